"""Encoding a finished clip for delivery, with its credit line and disclosure in the file's own metadata.

ffmpeg encodes every format (libsndfile writes no MP3 metadata, no AAC and no Opus tags); bit-exact flags
and no encoder tag keep the same samples and metadata giving the same bytes, so a cached clip's SHA-256
stays its ETag.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from heirloom.errors import GenerationError

CODECS: dict[str, list[str]] = {
    "wav": ["-c:a", "pcm_s16le", "-f", "wav"],
    "flac": ["-c:a", "flac", "-sample_fmt", "s32", "-bits_per_raw_sample", "24", "-f", "flac"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "192k", "-f", "mp3"],
    "m4a": ["-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart", "-f", "ipod"],
    "opus": ["-c:a", "libopus", "-b:a", "96k", "-f", "ogg"],
}


def encode(audio: np.ndarray, rate: int, fmt: str, out: Path, *, metadata: dict[str, str]) -> Path:
    """Write mono float ``audio`` to ``out`` as ``fmt``, tagged with ``metadata`` (title, artist, comment...)."""
    if fmt not in CODECS:
        raise GenerationError(f"no encoder for {fmt!r}; formats: {', '.join(CODECS)}")
    with tempfile.TemporaryDirectory(prefix="heirloom-encode-") as tmp:
        src = Path(tmp) / "clip.wav"
        sf.write(str(src), np.clip(audio, -1.0, 1.0), rate, subtype="FLOAT")
        tags = [arg for k, v in sorted(metadata.items()) if v for arg in ("-metadata", f"{k}={v}")]
        cmd = [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src),
            "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact", *tags, *CODECS[fmt], str(out),
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise GenerationError(f"ffmpeg could not encode the clip as {fmt}: {done.stderr.strip()[-300:]}")
    return out
