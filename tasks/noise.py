"""A robust noise profile from a recording's own pauses, and the SNR it implies.

Pause frames that are digital silence (a recorder's pre-roll, an edit) or loud transients (thumps,
clicks, a door) are left out: the first would make the noise look absent, the second make it look loud.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_S = 0.02
DIGITAL_SILENCE_RMS = 10 ** (-90 / 20)
TRANSIENT_DB = 10.0


def frame_power(x: np.ndarray, sr_hz: int) -> np.ndarray:
    """Mean power per 20 ms frame (the tail shorter than a frame is dropped)."""
    n = int(FRAME_S * sr_hz)
    frames = len(x) // n
    if frames == 0:
        return np.zeros(0)
    return np.mean(np.square(x[: frames * n].reshape(frames, n), dtype=np.float64), axis=1)


def robust_pause_frames(power: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """Indices of pause frames fit for a noise profile: not speech, not digital silence, not transients."""
    idx = np.flatnonzero(~speech & (power > DIGITAL_SILENCE_RMS**2))
    if len(idx) == 0:
        return idx
    median = np.median(power[idx])
    return idx[power[idx] <= median * 10 ** (TRANSIENT_DB / 10)]


@dataclass(frozen=True, slots=True)
class NoiseEstimate:
    noise_power: float
    speech_power: float
    pause_frames: int
    silence_frames: int
    transient_frames: int

    @property
    def snr_db(self) -> float:
        """Clean speech power (speech frames minus the noise in them) over noise power."""
        if self.noise_power <= 0:
            return float("inf") if self.speech_power > 0 else float("-inf")
        clean = self.speech_power - self.noise_power
        return float(10 * np.log10(clean / self.noise_power)) if clean > 0 else -20.0


def estimate_noise(power: np.ndarray, speech: np.ndarray) -> NoiseEstimate:
    """Noise and speech power from per-frame power and a per-frame speech flag."""
    kept = robust_pause_frames(power, speech)
    pauses = ~speech
    silence = int(np.sum(pauses & (power <= DIGITAL_SILENCE_RMS**2)))
    noise = float(np.mean(power[kept])) if len(kept) else 0.0
    speech_power = float(np.mean(power[speech])) if speech.any() else 0.0
    return NoiseEstimate(noise, speech_power, len(kept), silence, int(pauses.sum()) - silence - len(kept))
