"""Synthetic and shipped voices for the benchmarks: espeak-ng dialect voices, festival, the real speech in
Debian's alsa-utils, pink noise, and mixing at an SNR measured on active speech."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SR = 32000
TEXTS = [
    "The water is wide, I cannot get over, and neither have I wings to fly.",
    "Once upon a time, when the river ran high, an old fisherman lived by the ford.",
    "Down by the salley gardens my love and I did meet.",
    "My grandmother told this story at the fireside every winter night.",
]
VOICES = ["en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-rp"]


def espeak(voice: str, text: str, tmp: Path) -> np.ndarray:
    out = tmp / "e.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(out), text], check=True, capture_output=True)
    x, sr = sf.read(str(out), dtype="float32")
    return soxr.resample(x, sr, SR)


def festival(text: str, tmp: Path) -> np.ndarray:
    out = tmp / "f.wav"
    subprocess.run(["text2wave", "-o", str(out)], input=text.encode(), check=True, capture_output=True)
    x, sr = sf.read(str(out), dtype="float32")
    return soxr.resample(x, sr, SR)


def alsa_speech() -> list[np.ndarray]:
    out = []
    for p in sorted(Path("/usr/share/sounds/alsa").glob("*.wav")):
        if "Noise" in p.name:
            continue
        x, sr = sf.read(str(p), dtype="float32", always_2d=True)
        out.append(soxr.resample(x.mean(axis=1), sr, SR))
    return out


def active(x: np.ndarray) -> np.ndarray:
    frame = int(0.02 * SR)
    n = len(x) // frame
    p = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    act = np.repeat(p > p.max() * 10 ** (-40 / 10), frame)
    return np.pad(act, (0, len(x) - len(act)))


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.normal(size=n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / SR), 20.0)
    return np.fft.irfft(spec / np.sqrt(f), n)


def mix_at(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    p_speech = np.mean(clean[active(clean)] ** 2)
    noise = noise / np.sqrt(np.mean(noise**2) + 1e-12) * np.sqrt(p_speech / 10 ** (snr_db / 10))
    return (clean + noise).astype(np.float32)
