"""Probe and validate an audio file: what it is, and whether it decodes all the way through.

libsndfile (through soundfile) reads WAV/BWF/RF64, FLAC, Ogg Vorbis/Opus and MP3 in blocks; anything it
cannot open (M4A/AAC, odd codecs) is handed to ffprobe/ffmpeg, whose decoded samples are streamed through
a pipe. Either way memory stays flat in file length, and every sample is checked to be finite.
"""

from __future__ import annotations

import json
import math
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from heirloom.errors import AudioReadError

MIN_RATE_HZ = 4_000
MAX_RATE_HZ = 384_000
MAX_CHANNELS = 32
_BLOCK_FRAMES = 1 << 16

_SUBTYPE_BITS = {
    "PCM_S8": 8,
    "PCM_U8": 8,
    "PCM_16": 16,
    "PCM_24": 24,
    "PCM_32": 32,
    "FLOAT": 32,
    "DOUBLE": 64,
}
_SF_FORMATS = {
    "WAV": "wav",
    "WAVEX": "wav",
    "RF64": "wav",
    "W64": "w64",
    "FLAC": "flac",
    "MP3": "mp3",
    "AIFF": "aiff",
    "CAF": "caf",
}


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What a probe found. ``ext`` is the canonical extension for the preservation copy."""

    format: str
    codec: str
    ext: str
    sample_rate: int
    channels: int
    frames: int
    bit_depth: int | None

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


def probe_audio(path: Path, *, uri: str | None = None) -> AudioInfo:
    """Identify ``path`` and decode it completely; raise :class:`AudioReadError` if it is not usable audio.

    Checks: not empty, recognised as audio, sample rate within 4-384 kHz, 1-32 channels, at least one
    frame, no truncation (declared vs present data), no decoder errors, no NaN or infinite samples.
    """
    uri = uri or str(path)
    size = path.stat().st_size
    if size == 0:
        raise AudioReadError(uri, "empty file (0 bytes); re-export or re-transfer it")
    try:
        sfinfo = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError):
        sfinfo = None
    info = _from_soundfile(sfinfo, path) if sfinfo is not None else _from_ffprobe(path, uri)
    _check_parameters(info, uri)
    if sfinfo is not None:
        _decode_soundfile(path, uri, info)
    else:
        _decode_ffmpeg(path, uri, info)
    return info


def _from_soundfile(sfinfo: sf._SoundFileInfo, path: Path) -> AudioInfo:
    fmt = sfinfo.format
    subtype = sfinfo.subtype
    if fmt == "OGG":
        ext = "opus" if subtype == "OPUS" else "ogg"
    else:
        ext = _SF_FORMATS.get(fmt, fmt.lower())
    name = "bwf" if ext == "wav" and _has_riff_chunk(path, b"bext") else ext
    return AudioInfo(
        format=name,
        codec=subtype.lower(),
        ext=ext,
        sample_rate=int(sfinfo.samplerate),
        channels=int(sfinfo.channels),
        frames=int(sfinfo.frames),
        bit_depth=_SUBTYPE_BITS.get(subtype),
    )


def _from_ffprobe(path: Path, uri: str) -> AudioInfo:
    cmd = ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError as e:
        raise AudioReadError(uri, "ffprobe is not installed; run `make setup` (it installs ffmpeg)") from e
    if proc.returncode != 0:
        raise AudioReadError(uri, f"not a readable audio file ({_first_line(proc.stderr) or 'unknown format'})")
    data = json.loads(proc.stdout or "{}")
    streams = [s for s in data.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise AudioReadError(uri, "not an audio file: no audio stream found")
    s = streams[0]
    container = data.get("format", {}).get("format_name", "")
    ext = "m4a" if "mp4" in container or "m4a" in container else container.split(",")[0]
    rate = int(s.get("sample_rate") or 0)
    duration = float(s.get("duration") or data.get("format", {}).get("duration") or 0.0)
    bits = s.get("bits_per_raw_sample") or s.get("bits_per_sample")
    return AudioInfo(
        format=ext,
        codec=s.get("codec_name", "unknown"),
        ext=ext,
        sample_rate=rate,
        channels=int(s.get("channels") or 0),
        frames=int(round(duration * rate)),
        bit_depth=int(bits) if bits and int(bits) > 0 else None,
    )


def _check_parameters(info: AudioInfo, uri: str) -> None:
    if not MIN_RATE_HZ <= info.sample_rate <= MAX_RATE_HZ:
        raise AudioReadError(
            uri, f"sample rate {info.sample_rate} Hz is outside {MIN_RATE_HZ}-{MAX_RATE_HZ} Hz; the header is damaged"
        )
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise AudioReadError(uri, f"{info.channels} channels is outside 1-{MAX_CHANNELS}; the header is damaged")


def _decode_soundfile(path: Path, uri: str, info: AudioInfo) -> None:
    declared = _riff_declared_frames(path, info) if info.ext == "wav" else None
    frames = 0
    try:
        with sf.SoundFile(str(path)) as f:
            for block in f.blocks(blocksize=_BLOCK_FRAMES, dtype="float32", always_2d=True):
                _check_finite(block, uri, frames)
                frames += len(block)
    except sf.LibsndfileError as e:
        raise AudioReadError(uri, f"decoding failed after {frames} frames: {e}") from e
    if frames == 0:
        raise AudioReadError(uri, "holds no audio frames")
    if declared is not None and frames < declared:
        raise AudioReadError(uri, f"truncated: header declares {declared} frames, only {frames} present")
    if frames < info.frames:
        raise AudioReadError(uri, f"truncated: {info.frames} frames expected, decoding stopped at {frames}")


def _decode_ffmpeg(path: Path, uri: str, info: AudioInfo) -> None:
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-xerror",
        "-i",
        str(path),
        "-map",
        "0:a:0",
        "-f",
        "f32le",
        "-acodec",
        "pcm_f32le",
        "-",
    ]
    frames = 0
    block_bytes = _BLOCK_FRAMES * 4 * info.channels
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            while raw := proc.stdout.read(block_bytes):
                block = np.frombuffer(raw[: len(raw) - len(raw) % 4], dtype="<f4")
                _check_finite(block, uri, frames)
                frames += len(block) // info.channels
        except AudioReadError:
            proc.kill()
            raise
        err = proc.stderr.read().decode("utf-8", "replace")
        code = proc.wait()
    if code != 0 or err.strip():
        raise AudioReadError(uri, f"undecodable {info.codec} stream: {_first_line(err) or f'ffmpeg exit {code}'}")
    if frames == 0:
        raise AudioReadError(uri, "holds no audio frames")


def _check_finite(block: np.ndarray, uri: str, offset: int) -> None:
    if not np.isfinite(block).all():
        bad = int(np.argmin(np.isfinite(block).all(axis=-1) if block.ndim > 1 else np.isfinite(block)))
        raise AudioReadError(uri, f"NaN or infinite sample near frame {offset + bad}; the file is corrupt")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _riff_chunks(path: Path):
    """Yield (chunk id, declared size, offset of data, file size) for a RIFF/WAVE file's top-level chunks.

    Written by hand because libsndfile silently clamps a data chunk that runs past the end of the file, so
    it cannot tell us a transfer was cut short.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return
        end = path.stat().st_size
        pos = 12
        while pos + 8 <= end:
            f.seek(pos)
            cid, size = struct.unpack("<4sI", f.read(8))
            yield cid, size, pos + 8, end
            pos += 8 + size + (size & 1)


def _has_riff_chunk(path: Path, chunk: bytes) -> bool:
    return any(cid == chunk for cid, *_ in _riff_chunks(path))


def _riff_declared_frames(path: Path, info: AudioInfo) -> int | None:
    for cid, size, _, _ in _riff_chunks(path):
        if cid == b"data":
            if size == 0xFFFFFFFF:  # RF64: the real size lives in the ds64 chunk; libsndfile handles it
                return None
            bytes_per_frame = (info.bit_depth or 16) // 8 * info.channels
            return math.floor(size / bytes_per_frame) if bytes_per_frame else None
    return None
