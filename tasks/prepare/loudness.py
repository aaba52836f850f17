"""Loudness (ITU-R BS.1770 through pyloudnorm) measured on speech only, and an oversampled true peak.

Integrated loudness over a whole field recording is skewed by long pauses and room tone, so heirloom
measures each speech region with pyloudnorm and combines them power-weighted by duration.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyloudnorm
import soxr

TARGET_LUFS = -23.0  # EBU R 128, measured here on speech only
MAX_TRUE_PEAK_DBTP = -1.0
_MIN_BLOCK_S = 0.4


def speech_loudness(regions_audio: Iterable[np.ndarray], sr_hz: int) -> float:
    """Loudness (LUFS) of the speech regions together; -inf when there is none long enough.

    ``regions_audio`` may be a generator, so a long recording is measured one region at a time.
    """
    meter = pyloudnorm.Meter(sr_hz)
    energy, seconds = 0.0, 0.0
    for x in regions_audio:
        if len(x) < _MIN_BLOCK_S * sr_hz:
            continue
        lufs = meter.integrated_loudness(x.astype(np.float64))
        if np.isfinite(lufs):
            dur = len(x) / sr_hz
            energy += dur * 10 ** (lufs / 10)
            seconds += dur
    return float(10 * np.log10(energy / seconds)) if seconds else float("-inf")


def true_peak_dbtp(x: np.ndarray, sr_hz: int) -> float:
    """Peak of the 4x-oversampled signal, in dBTP (pyloudnorm measures no true peak of its own)."""
    if not len(x):
        return float("-inf")
    up = soxr.resample(x.astype(np.float32), sr_hz, sr_hz * 4, quality="HQ")
    peak = float(np.max(np.abs(up)))
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


@dataclass(frozen=True, slots=True)
class GainPlan:
    gain_db: float
    measured_lufs: float
    true_peak_dbtp: float
    capped: bool

    @property
    def expected_lufs(self) -> float:
        return self.measured_lufs + self.gain_db


def plan_gain(measured_lufs: float, peak_dbtp: float, *, target_lufs: float = TARGET_LUFS) -> GainPlan:
    """The gain to reach ``target_lufs``, capped so the true peak stays at or below -1 dBTP."""
    if not np.isfinite(measured_lufs):
        return GainPlan(0.0, measured_lufs, peak_dbtp, False)
    gain = target_lufs - measured_lufs
    if peak_dbtp + gain > MAX_TRUE_PEAK_DBTP:
        return GainPlan(MAX_TRUE_PEAK_DBTP - peak_dbtp, measured_lufs, peak_dbtp, True)
    return GainPlan(gain, measured_lufs, peak_dbtp, False)
