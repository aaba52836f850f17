"""Streaming audio decode: float32 blocks of any file heirloom ingests, memory flat in file length.

libsndfile (soundfile) reads WAV/BWF, FLAC, Ogg and MP3 in blocks; anything else (M4A/AAC) is decoded by
ffmpeg into a pipe. Blocks are ``(frames, channels)`` float32 at the file's own rate.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from heirloom.errors import AudioReadError


def audio_rate_channels(path: Path) -> tuple[int, int]:
    try:
        info = sf.info(str(path))
        return int(info.samplerate), int(info.channels)
    except (sf.LibsndfileError, RuntimeError):
        from tasks.audio.probe import probe_audio

        probed = probe_audio(path)
        return probed.sample_rate, probed.channels


def read_blocks(path: Path, block_frames: int) -> Iterator[np.ndarray]:
    """Yield ``(n, channels)`` float32 blocks of at most ``block_frames`` frames."""
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError):
        yield from _ffmpeg_blocks(path, block_frames)
        return
    with f:
        yield from f.blocks(blocksize=block_frames, dtype="float32", always_2d=True)


def _ffmpeg_blocks(path: Path, block_frames: int) -> Iterator[np.ndarray]:
    _, channels = audio_rate_channels(path)
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        size = block_frames * channels * 4
        while raw := proc.stdout.read(size):
            usable = len(raw) - len(raw) % (4 * channels)
            yield np.frombuffer(raw[:usable], dtype="<f4").reshape(-1, channels)
        err = proc.stderr.read().decode(errors="replace").strip()
        if proc.wait() != 0:
            raise AudioReadError(str(path), f"ffmpeg could not decode it: {err}")


def read_all(path: Path) -> tuple[np.ndarray, int]:
    """The whole file as ``(frames, channels)`` float32 and its rate (for clips, not for long originals)."""
    if not path.is_file():
        raise AudioReadError(str(path), "no such file")
    rate, _ = audio_rate_channels(path)
    blocks = list(read_blocks(path, 1 << 20))
    if not blocks:
        raise AudioReadError(str(path), "no audio frames in it")
    return np.concatenate(blocks), rate
