"""Speech or song, told by held notes: a sung syllable holds one pitch for hundreds of milliseconds, a spoken
vowel glides and rarely lasts 300 ms.

silero-vad cannot tell us: it is trained on speech and misses most singing. On bench/prepare.py's references
the held share is 0.26 to 0.62 for the sung verse (clean, or with hiss, babble, fan, hum or clicks; not under
0 dB pink noise) and at most 0.04 for the espeak-ng and festival voices and the real speech in alsa-utils,
clean or under any of those noises.

A short autocorrelation pitch tracker is written here rather than taken from torchcrepe or librosa's pyin:
only the stability of the pitch matters, and this costs a few FFTs per second of audio in streaming blocks.
"""

from __future__ import annotations

import numpy as np
import soxr

from tasks.prepare.noise import FRAME_S, runs

PITCH_RATE_HZ = 8000
F0_RANGE_HZ = (70.0, 800.0)
VOICED_PERIODICITY = 0.5
HELD_SHARE_SONG = 0.15
_WIN_S = 0.04
_STEADY_PERCENTILE = 10
_VOICED_RANGE_DB = 30.0  # frames this far below the loud ones are not judged
_MIN_RUN_S = 0.3
_MAX_RUN_S = 4.0  # a tone held longer is a machine (a fan, a whistle), not a note
_SMOOTH_FRAMES = 9  # 180 ms: about one vibrato cycle
_STEADY_CENTS_PER_100MS = 40.0


def pitch_frames(audio: np.ndarray, sr_hz: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per 20 ms hop: f0 (Hz), periodicity (normalised autocorrelation at f0, 0..1) and frame energy."""
    y = soxr.resample(audio.astype(np.float32), sr_hz, PITCH_RATE_HZ) if sr_hz != PITCH_RATE_HZ else audio
    hop, win = int(FRAME_S * PITCH_RATE_HZ), int(_WIN_S * PITCH_RATE_HZ)
    n = (len(y) - win) // hop + 1 if len(y) >= win else 0
    if n <= 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    frames = y[np.arange(win)[None, :] + hop * np.arange(n)[:, None]] * np.hanning(win)
    frames = frames - frames.mean(axis=1, keepdims=True)
    spec = np.abs(np.fft.rfft(frames, 4 * win)) ** 2
    # steady tones (hum, a fan's whine) are periodic too: take away each bin's floor over the block first
    spec = np.maximum(spec - np.percentile(spec, _STEADY_PERCENTILE, axis=0), 0.0)
    ac = np.fft.irfft(spec)
    energy = ac[:, 0] + 1e-12
    lo, hi = int(PITCH_RATE_HZ / F0_RANGE_HZ[1]), int(PITCH_RATE_HZ / F0_RANGE_HZ[0]) + 1
    norm = ac[:, lo - 1 : hi + 1] / energy[:, None]
    # only true peaks: at the edge of the range the slope of a low rumble's autocorrelation would win
    peak = (norm[:, 1:-1] > norm[:, :-2]) & (norm[:, 1:-1] >= norm[:, 2:])
    cand = np.where(peak, norm[:, 1:-1], -1.0)
    lag = lo + np.argmax(cand, axis=1)
    return PITCH_RATE_HZ / lag, np.maximum(cand[np.arange(n), lag - lo], 0.0), energy


def held_note_share(f0_hz: np.ndarray, periodicity: np.ndarray, energy: np.ndarray) -> float:
    """Share of voiced frames inside voiced runs of 0.3 to 4 s whose smoothed pitch moves less than 40 cents
    per 100 ms."""
    if len(energy) == 0:
        return 0.0
    voiced = (periodicity > VOICED_PERIODICITY) & (energy > np.percentile(energy, 95) * 10 ** (-_VOICED_RANGE_DB / 10))
    if not voiced.any():
        return 0.0
    cents = 1200 * np.log2(f0_hz)
    held = 0
    step = int(0.1 / FRAME_S)
    for s, e in runs(voiced):
        if not _MIN_RUN_S <= (e - s) * FRAME_S <= _MAX_RUN_S:
            continue
        smooth = np.convolve(cents[s:e], np.ones(_SMOOTH_FRAMES) / _SMOOTH_FRAMES, mode="valid")
        held += int(np.sum(np.abs(smooth[step:] - smooth[:-step]) < _STEADY_CENTS_PER_100MS))
    return held / int(voiced.sum())


class HeldNotes:
    """Collects pitch frames block by block, so a long recording is judged without holding its audio."""

    def __init__(self, sr_hz: int) -> None:
        self.sr_hz = sr_hz
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, block: np.ndarray) -> None:
        self._parts.append(pitch_frames(block, self.sr_hz))

    def share(self) -> float:
        if not self._parts:
            return 0.0
        return held_note_share(*(np.concatenate(p) for p in zip(*self._parts, strict=True)))
