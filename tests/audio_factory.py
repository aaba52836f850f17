"""Synthesized test audio and collections: nothing is downloaded."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from tasks.ingest.manifest import ManifestRow, render_manifest


def sinusoid(
    freq_hz: float = 440.0, sr_hz: int = 16000, duration_s: float = 1.0, channels: int = 1, seed: int = 0
) -> np.ndarray:
    """A sine with a little seeded noise, so two calls with different seeds never share bytes."""
    t = np.arange(int(sr_hz * duration_s)) / sr_hz
    rng = np.random.default_rng(seed)
    x = 0.3 * np.sin(2 * np.pi * freq_hz * t) + rng.normal(0, 0.01, len(t))
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


def write_audio(
    path: Path, *, fmt: str = "wav", sr_hz: int = 16000, duration_s: float = 1.0, channels: int = 1, seed: int = 0
) -> Path:
    """Write a test recording as WAV/FLAC/OGG/MP3 with soundfile, or M4A/Opus through ffmpeg."""
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = sinusoid(sr_hz=sr_hz, duration_s=duration_s, channels=channels, seed=seed)
    if fmt in ("wav", "flac", "ogg", "mp3"):
        subtype = {"wav": "PCM_16", "flac": "PCM_24", "ogg": "VORBIS", "mp3": "MPEG_LAYER_III"}[fmt]
        sf.write(str(path), audio, sr_hz, subtype=subtype, format={"ogg": "OGG", "mp3": "MP3"}.get(fmt))
    else:
        wav = path.with_suffix(".src.wav")
        sf.write(str(wav), audio, sr_hz)
        codec = {"m4a": ["-c:a", "aac"], "opus": ["-c:a", "libopus"]}[fmt]
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), *codec, str(path)], check=True)
        wav.unlink()
    return path


def make_collection(
    root: Path, *, good: int = 3, broken: bool = True, bearer: str = "b-01", seed: int = 0
) -> dict[str, str]:
    """A collection folder with ``good`` recordings and (optionally) every kind of bad file and row.

    Returns {file: expected outcome} for the files it lists.
    """
    root.mkdir(parents=True, exist_ok=True)
    rows: list[ManifestRow] = []
    expected: dict[str, str] = {}
    fmts = ["wav", "flac", "mp3", "ogg", "m4a", "opus"]
    for i in range(good):
        name = f"takes/take{i:03d}.{fmts[i % len(fmts)]}"
        write_audio(root / name, fmt=fmts[i % len(fmts)], seed=seed * 1000 + i, duration_s=0.5)
        rows.append(
            ManifestRow(
                line=0,
                file=name,
                bearer_id=bearer,
                title=f"take {i}",
                transcript="la la la",
                language="en",
                dialect="en-gb-scotland",
                tk_labels=("tk_attribution",),
            )
        )
        expected[name] = "ingested"
    if broken:
        good_wav = write_audio(root / "bad" / "seed.wav", seed=seed + 99).read_bytes()
        (root / "bad" / "seed.wav").unlink()
        nan = sinusoid(seed=seed + 5)
        nan[10] = np.nan
        sf.write(str(root / "bad" / "nan.wav"), nan, 16000, subtype="FLOAT")
        (root / "bad" / "empty.wav").write_bytes(b"")
        (root / "bad" / "truncated.wav").write_bytes(good_wav[: len(good_wav) // 2])
        (root / "bad" / "text.wav").write_text("not audio at all\n")
        rate = bytearray(good_wav)
        rate[24:28] = (2).to_bytes(4, "little")
        (root / "bad" / "absurd-rate.wav").write_bytes(bytes(rate))
        for name in ("bad/nan.wav", "bad/empty.wav", "bad/truncated.wav", "bad/text.wav", "bad/absurd-rate.wav"):
            rows.append(ManifestRow(line=0, file=name, bearer_id=bearer))
            expected[name] = "quarantined"
        (root / "orphan.wav").write_bytes(good_wav)
        expected["orphan.wav"] = "quarantined"
        write_audio(root / "stranger.wav", seed=seed + 7)
        rows.append(ManifestRow(line=0, file="stranger.wav", bearer_id="b-nobody"))
        expected["stranger.wav"] = "quarantined"
        rows.append(ManifestRow(line=0, file="gone.wav", bearer_id=bearer))
        expected["gone.wav"] = "quarantined"
        rows.append(ManifestRow(line=0, file="../outside.wav", bearer_id=bearer))
        expected["../outside.wav"] = "quarantined"
    (root / "manifest.csv").write_text(render_manifest(rows))
    return expected
