"""Quality measures of field recordings and the gate that decides what may train a model.

Streaming trackers see the decoded original block by block: clipping is counted as flat runs at the
file's own maximum (a clipped transfer that was later attenuated still clips, below full scale), dropouts
as short runs of digital zeros with signal on both sides.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import signal

GateResult = Literal["pass", "review", "fail"]
_DNSMOS_LOCK = threading.Lock()  # speechmos builds its ONNX sessions lazily in a module global


class ClipTracker:
    """Counts samples in runs (>= ``min_run``) of an identical extreme value, relative to the file's max."""

    def __init__(self, min_run: int = 3) -> None:
        self.min_run = min_run
        self.max_abs = 0.0
        self.samples = 0
        self._runs: list[tuple[float, int]] = []
        self._tail: np.ndarray | None = None

    def update(self, block: np.ndarray) -> None:
        for ch in block.T if block.ndim > 1 else [block]:
            self._channel(np.abs(ch))
        self.samples += block.size

    def _channel(self, a: np.ndarray) -> None:
        if not len(a):
            return
        self.max_abs = max(self.max_abs, float(a.max()))
        edges = np.flatnonzero(np.diff(a) != 0) + 1
        starts = np.concatenate([[0], edges])
        lengths = np.diff(np.concatenate([starts, [len(a)]]))
        keep = (lengths >= self.min_run) & (a[starts] >= 0.5 * self.max_abs) & (a[starts] > 0)
        self._runs += [(float(a[s]), int(n)) for s, n in zip(starts[keep], lengths[keep], strict=True)]

    @property
    def ratio(self) -> float:
        """Share of samples in flat runs within 0.1 dB of the file's maximum."""
        if not self.samples or self.max_abs <= 0:
            return 0.0
        level = self.max_abs * 10 ** (-0.1 / 20)
        return sum(n for v, n in self._runs if v >= level) / self.samples


class DropoutTracker:
    """Finds runs of digital zeros 5 ms-1 s long with signal on both sides (lost samples, not pauses)."""

    def __init__(self, sr_hz: int, *, min_s: float = 0.005, max_s: float = 1.0) -> None:
        self.sr_hz = sr_hz
        self.min_n, self.max_n = int(min_s * sr_hz), int(max_s * sr_hz)
        self.dropouts: list[float] = []
        self._offset = 0
        self._zero_run_start: int | None = None
        self._seen_signal = False

    def update(self, mono: np.ndarray) -> None:
        zero = np.abs(mono) < 1e-7
        changes = np.flatnonzero(np.diff(zero.astype(np.int8))) + 1
        bounds = np.concatenate([[0], changes, [len(mono)]])
        for a in bounds[:-1]:
            if zero[a]:
                if self._zero_run_start is None:
                    self._zero_run_start = self._offset + a
            else:
                if self._zero_run_start is not None and self._seen_signal:
                    n = self._offset + a - self._zero_run_start
                    if self.min_n <= n <= self.max_n:
                        self.dropouts.append(self._zero_run_start / self.sr_hz)
                self._zero_run_start = None
                self._seen_signal = True
        self._offset += len(mono)


def click_positions(x: np.ndarray, sr_hz: int, *, k: float = 10.0) -> np.ndarray:
    """Sample indices of impulses: samples leaving a 7-point median by ``k`` times the residual's local RMS
    (40 ms), one index per event (hits closer than 2 ms are one click). Speech carries impulsive detail of
    its own, so callers count clicks in the pauses, where they are heard and spoil the noise profile."""
    from scipy.ndimage import median_filter, uniform_filter1d

    if len(x) < 64:
        return np.zeros(0, dtype=int)
    resid = x - median_filter(x, size=7, mode="nearest")
    mean_square = uniform_filter1d(resid.astype(np.float64) ** 2, size=int(0.04 * sr_hz), mode="nearest")
    local = np.sqrt(np.maximum(mean_square, 0.0)) + 1e-6
    hits = np.flatnonzero(np.abs(resid) > k * local)
    if not len(hits):
        return hits
    return hits[np.r_[True, np.diff(hits) > int(0.002 * sr_hz)]]


def bandwidth_hz(speech_psd: np.ndarray, noise_psd: np.ndarray, freqs: np.ndarray) -> float:
    """Highest frequency where speech stands 6 dB over the noise and within 60 dB of its own peak."""
    if not len(speech_psd) or speech_psd.max() <= 0:
        return 0.0
    ok = (speech_psd > 4 * noise_psd) & (speech_psd > speech_psd.max() * 1e-6)
    return float(freqs[np.flatnonzero(ok)[-1]]) if ok.any() else 0.0


def welch_psd(x: np.ndarray, sr_hz: int) -> tuple[np.ndarray, np.ndarray]:
    n = min(len(x), 1024)
    if n < 64:
        return np.zeros(0), np.zeros(0)
    return signal.welch(x, sr_hz, nperseg=n)


def dnsmos(x16k: np.ndarray) -> dict[str, float]:
    """DNSMOS P.835 (speechmos, model in the wheel) of a 16 kHz excerpt: SIG, BAK, OVRL."""
    from speechmos import dnsmos as _dnsmos

    peak = float(np.max(np.abs(x16k))) if len(x16k) else 0.0
    if peak <= 0:
        return {"sig": float("nan"), "bak": float("nan"), "ovrl": float("nan")}
    with _DNSMOS_LOCK:
        out = _dnsmos.run(np.clip(x16k / max(peak, 1.0), -1, 1).astype(np.float32), sr=16000)
    return {"sig": float(out["sig_mos"]), "bak": float(out["bak_mos"]), "ovrl": float(out["ovrl_mos"])}


@dataclass(frozen=True, slots=True)
class GateConfig:
    """The quality gate, in one place. ``fail`` keeps an item out of training; ``review`` asks a person.

    Defaults: fail on clipping above 0.1 % of samples, any dropout, SNR under 10 dB, no speech found,
    or less than 5 % speech; review on an SNR that no pause lets us measure, bandwidth under 4 kHz,
    DNSMOS OVRL under 2.5, or more than 30 clicks a minute.
    """

    max_clipping_ratio: float = 0.001
    max_dropouts: int = 0
    min_snr_db: float = 10.0
    min_speech_ratio: float = 0.05
    review_bandwidth_hz: float = 4000.0
    review_dnsmos_ovrl: float = 2.5
    review_clicks_per_min: float = 30.0


@dataclass(frozen=True, slots=True)
class GateDecision:
    result: GateResult
    reasons: tuple[str, ...] = field(default=())


def gate(m: dict[str, Any], cfg: GateConfig = GateConfig()) -> GateDecision:
    """Apply the gate to a metrics dict (keys as :func:`tasks.prepare.chain` writes them)."""
    fail, review = [], []
    if m.get("speech_s", 0) <= 0:
        fail.append("no speech found: silent, empty or all noise")
    elif m.get("speech_ratio", 0) < cfg.min_speech_ratio:
        fail.append(f"speech is {m['speech_ratio']:.1%} of the recording (< {cfg.min_speech_ratio:.0%})")
    if m.get("clipping_ratio", 0) > cfg.max_clipping_ratio:
        fail.append(f"clipping {m['clipping_ratio']:.3%} of samples (> {cfg.max_clipping_ratio:.1%})")
    if len(m.get("dropouts_s", [])) > cfg.max_dropouts:
        fail.append(f"{len(m['dropouts_s'])} dropout(s), first at {m['dropouts_s'][0]:.2f} s")
    snr = m.get("snr_db")
    if snr is not None and math.isfinite(snr) and snr < cfg.min_snr_db and m.get("speech_s", 0) > 0:
        fail.append(f"SNR {snr:.2f} dB (< {cfg.min_snr_db:g} dB)")
    elif snr is None and m.get("speech_s", 0) > 0:
        review.append("SNR not measurable: no pause between the voice (continuous noise such as babble?)")
    if m.get("bandwidth_hz") is not None and 0 < m["bandwidth_hz"] < cfg.review_bandwidth_hz:
        review.append(f"bandwidth {m['bandwidth_hz']:.0f} Hz (< {cfg.review_bandwidth_hz:.0f} Hz)")
    ovrl = (m.get("dnsmos") or {}).get("ovrl")
    if ovrl is not None and math.isfinite(ovrl) and ovrl < cfg.review_dnsmos_ovrl:
        review.append(f"DNSMOS OVRL {ovrl:.2f} (< {cfg.review_dnsmos_ovrl:g})")
    if m.get("clicks_per_min", 0) > cfg.review_clicks_per_min:
        review.append(f"{m['clicks_per_min']:.0f} clicks a minute (> {cfg.review_clicks_per_min:g})")
    if fail:
        return GateDecision("fail", tuple(fail + review))
    return GateDecision("review" if review else "pass", tuple(review))
