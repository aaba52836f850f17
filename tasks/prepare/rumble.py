"""Rumble (traffic, handling noise, wind on the microphone): found in the pauses' spectrum, taken out by a
high-pass under the voice's lowest pitch, run forwards and backwards so that it shifts no phase.

Rumble is the commonest field noise and the one every denoiser handles worst: on bench/prepare.py's brown-noise
mixtures DeepFilterNet3 alone lost PESQ. Almost all of its energy lies under the voice's fundamental, where a
filter removes it without touching speech, so the denoiser that follows (if any is still needed) is planned on
what the filter leaves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soxr
from scipy import signal

RUMBLE_BAND_HZ = 150.0
RUMBLE_SHARE = 0.5  # the pauses' noise is rumble when at least this share of its power lies under the band
MIN_CUTOFF_HZ = 40.0
MAX_CUTOFF_HZ = 120.0
CUTOFF_OF_F0 = 0.7  # the cutoff, as a share of the voice's low pitch (its 5th percentile): an octave's margin
ORDER = 4  # Butterworth; forwards and backwards, 8th order in effect
_PITCH_RATE_HZ = 16000
_PITCH_EXCERPT_S = 8.0


@dataclass(frozen=True, slots=True)
class Rumble:
    found: bool
    share: float  # of the pauses' noise power under RUMBLE_BAND_HZ
    cutoff_hz: float = 0.0
    voice_low_hz: float | None = None  # 5th percentile of the voice's pitch, where pYIN found any


def detect_rumble(noise_clip: np.ndarray, speech: Callable[[], np.ndarray], sr_hz: int) -> Rumble:
    """Whether the pauses hold rumble and, if so, the cutoff under the voice of ``speech()`` (a contiguous
    excerpt: pYIN needs whole syllables; read only when there is rumble)."""
    if len(noise_clip) < sr_hz // 4:
        return Rumble(False, 0.0)
    freqs, psd = signal.welch(noise_clip, sr_hz, nperseg=min(len(noise_clip), 8192))
    share = float(psd[freqs < RUMBLE_BAND_HZ].sum() / max(psd.sum(), 1e-30))
    if share < RUMBLE_SHARE:
        return Rumble(False, share)
    low = voice_low_hz(speech(), sr_hz)
    cutoff = MIN_CUTOFF_HZ if low is None else float(np.clip(CUTOFF_OF_F0 * low, MIN_CUTOFF_HZ, MAX_CUTOFF_HZ))
    return Rumble(True, share, cutoff, low)


def voice_low_hz(speech: np.ndarray, sr_hz: int) -> float | None:
    """The 5th percentile of the voice's pitch (pYIN, 50-500 Hz) over at most ``_PITCH_EXCERPT_S``."""
    import librosa

    x = soxr.resample(speech[: int(_PITCH_EXCERPT_S * sr_hz)].astype(np.float32), sr_hz, _PITCH_RATE_HZ)
    if len(x) < _PITCH_RATE_HZ // 2:
        return None
    f0, voiced, _ = librosa.pyin(x, fmin=50, fmax=500, sr=_PITCH_RATE_HZ, frame_length=1024)
    pitched = f0[voiced & np.isfinite(f0)]
    return float(np.percentile(pitched, 5)) if len(pitched) >= 10 else None


class HighPass:
    """A Butterworth high-pass over a stream of blocks (state carried between them)."""

    def __init__(self, cutoff_hz: float, sr_hz: int) -> None:
        self.sos = signal.butter(ORDER, cutoff_hz, btype="highpass", fs=sr_hz, output="sos")
        self._zi = np.zeros((self.sos.shape[0], 2))

    def __call__(self, block: np.ndarray) -> np.ndarray:
        out, self._zi = signal.sosfilt(self.sos, block, zi=self._zi)
        return out.astype(np.float32)


def high_passed(x: np.ndarray, cutoff_hz: float, sr_hz: int) -> np.ndarray:
    """``x`` through the same filter forwards and backwards (for a noise clip: what the chain leaves of it)."""
    sos = signal.butter(ORDER, cutoff_hz, btype="highpass", fs=sr_hz, output="sos")
    return signal.sosfiltfilt(sos, x).astype(np.float32) if len(x) > 3 * (2 * ORDER + 1) else x
