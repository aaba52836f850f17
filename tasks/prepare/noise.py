"""A robust noise profile from a recording's own pauses, and the SNR it implies.

Pause frames that are digital silence (a recorder's pre-roll, an edit) or loud transients (thumps,
clicks, a door) are left out: the first would make the noise look absent, the second make it look loud.
So are pauses shorter than ``MIN_PAUSE_S``: between sung notes or words they hold decays, not noise.

silero-vad is trained on speech and misses most singing, so ``sound_activity`` marks sustained sound well
above the recording's own floor; what it finds outside silero's regions is voice all the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_S = 0.02
DIGITAL_SILENCE_RMS = 10 ** (-90 / 20)
TRANSIENT_DB = 10.0
MIN_PAUSE_S = 0.2
ACTIVE_MARGIN_DB = 6.0
MIN_ACTIVE_S = 0.3
_SMOOTH_FRAMES = 5


def frame_power(x: np.ndarray, sr_hz: int) -> np.ndarray:
    """Mean power per 20 ms frame (the tail shorter than a frame is dropped)."""
    n = int(FRAME_S * sr_hz)
    frames = len(x) // n
    if frames == 0:
        return np.zeros(0)
    return np.mean(np.square(x[: frames * n].reshape(frames, n), dtype=np.float64), axis=1)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of the runs of True in a boolean array (end exclusive)."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def runs_at_least(mask: np.ndarray, frames: int) -> np.ndarray:
    """``mask`` with its runs of True shorter than ``frames`` cleared."""
    out = np.zeros(len(mask), dtype=bool)
    for s, e in runs(mask):
        if e - s >= frames:
            out[s:e] = True
    return out


def sound_activity(power: np.ndarray, *, margin_db: float = ACTIVE_MARGIN_DB) -> np.ndarray:
    """Frames of sustained sound (at least ``MIN_ACTIVE_S``) whose 100 ms mean power is ``margin_db`` above
    the floor (the 10th percentile of frames that are not digital silence)."""
    live = power > DIGITAL_SILENCE_RMS**2
    if not live.any():
        return np.zeros(len(power), dtype=bool)
    floor = float(np.percentile(power[live], 10))
    smooth = np.convolve(power, np.ones(_SMOOTH_FRAMES) / _SMOOTH_FRAMES, mode="same")
    return runs_at_least(live & (smooth > floor * 10 ** (margin_db / 10)), int(MIN_ACTIVE_S / FRAME_S))


def robust_pause_frames(power: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """Indices of pause frames fit for a noise profile: in pauses of at least ``MIN_PAUSE_S``, not speech,
    not digital silence, not transients."""
    pause = runs_at_least(~speech & (power > DIGITAL_SILENCE_RMS**2), int(MIN_PAUSE_S / FRAME_S))
    idx = np.flatnonzero(pause)
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
    left_out_frames: int

    @property
    def measurable(self) -> bool:
        """False when the recording has no pause at all (continuous babble, wall-to-wall sound)."""
        return self.pause_frames > 0 or self.silence_frames > 0

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
