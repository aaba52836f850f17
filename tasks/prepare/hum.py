"""Mains hum: find the fundamental (50 or 60 Hz) and its harmonics in the pauses, remove it with a notch comb.

>>> import numpy as np
>>> sr = 32000; t = np.arange(sr * 4) / sr
>>> x = 0.05 * np.sin(2 * np.pi * 50 * t) + 0.001 * np.random.default_rng(0).normal(size=t.size)
>>> detect_hum(x, sr).f0_hz
50
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

MAX_HARMONICS = 8


@dataclass(frozen=True, slots=True)
class Hum:
    f0_hz: int | None
    harmonics: tuple[int, ...] = ()
    level_db: float = float("-inf")

    @property
    def found(self) -> bool:
        return self.f0_hz is not None


def _psd(x: np.ndarray, sr_hz: int) -> tuple[np.ndarray, np.ndarray]:
    nper = min(len(x), sr_hz)  # 1 Hz bins resolve 50 vs 60 Hz and their harmonics
    return signal.welch(x, sr_hz, nperseg=nper, noverlap=nper // 2)


def detect_hum(noise: np.ndarray, sr_hz: int, *, prominence_db: float = 10.0) -> Hum:
    """Look for peaks at k*50 and k*60 Hz standing ``prominence_db`` above their neighbourhood."""
    if len(noise) < sr_hz // 2:
        return Hum(None)
    freqs, psd = _psd(noise, sr_hz)
    best = Hum(None)
    for f0 in (50, 60):
        found = []
        for k in range(1, MAX_HARMONICS + 1):
            f = f0 * k
            peak = psd[(freqs >= f - 1.5) & (freqs <= f + 1.5)].max(initial=0.0)
            ring = psd[((freqs >= f - 12) & (freqs <= f - 4)) | ((freqs >= f + 4) & (freqs <= f + 12))]
            if len(ring) and peak > 0 and 10 * np.log10(peak / max(np.median(ring), 1e-20)) >= prominence_db:
                found.append(k)
        # a lone overtone is more often a voice's partial than hum: ask for the fundamental or two harmonics
        if (1 in found or len(found) >= 2) and len(found) > len(best.harmonics):
            level = 10 * np.log10(sum(psd[np.argmin(np.abs(freqs - f0 * k))] for k in found) + 1e-20)
            best = Hum(f0, tuple(found), float(level))
    return best


def notch_sos(hum: Hum, sr_hz: int, *, q: float = 30.0) -> np.ndarray:
    """Second-order sections of a notch at each detected harmonic (empty when no hum)."""
    if not hum.found:
        return np.zeros((0, 6))
    sections = []
    for k in hum.harmonics:
        b, a = signal.iirnotch(hum.f0_hz * k, q, fs=sr_hz)
        sections.append(np.concatenate([b, a]))
    return np.array(sections)


class NotchComb:
    """Streams audio through the notch comb, carrying filter state across blocks."""

    def __init__(self, hum: Hum, sr_hz: int) -> None:
        self.sos = notch_sos(hum, sr_hz)
        self.zi = np.zeros((len(self.sos), 2))

    def __call__(self, block: np.ndarray) -> np.ndarray:
        if not len(self.sos):
            return block
        out, self.zi = signal.sosfilt(self.sos, block, zi=self.zi)
        return out.astype(np.float32)
