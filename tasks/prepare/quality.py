"""Quality measures of field recordings and the gate that decides what may train a model.

Streaming trackers see the decoded original block by block: clipping is counted as flat runs at the
file's own maximum (a clipped transfer that was later attenuated still clips, below full scale), dropouts
as short runs of digital zeros cutting into sound at speech level (edited or gated silence is only counted).
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


@dataclass(frozen=True, slots=True)
class ZeroRun:
    """A run of digital zeros with signal on both sides, and the sound at its two edges."""

    start_s: float
    duration_s: float
    level_before_db: float  # RMS of the 10 ms before the run, dBFS
    level_after_db: float
    abrupt_before: bool  # the signal is still at its level in the last 2 ms: cut off, not faded out
    abrupt_after: bool


class DropoutTracker:
    """Runs of digital zeros 5 ms-1 s long with signal on both sides, told apart by their edges.

    A dropout is lost signal in the middle of sound (a tape or ADC glitch): the sound on both sides is at
    speech level and it stops and starts abruptly. Digital silence from editing, noise gating or synthesis
    (a pause, a stop closure) follows sound that has faded out, or quiet sound: it is counted, not failed.
    Whether a side is "at speech level" needs the file's level, so the runs are classified at the end.
    """

    _SIDE_S = 0.01
    _EDGE_S = 0.002
    ABRUPT = 0.1  # peak of the last (first) 2 ms over the RMS of the 10 ms beside the run; a fade-out gives 0.001
    SPEECH_LEVEL_DB = 20.0  # a side at most this far under the file's loud level (95th percentile of 10 ms RMS)

    def __init__(self, sr_hz: int, *, min_s: float = 0.005, max_s: float = 1.0) -> None:
        self.sr_hz = sr_hz
        self.min_n, self.max_n = int(min_s * sr_hz), int(max_s * sr_hz)
        self._side_n, self._edge_n = max(1, int(self._SIDE_S * sr_hz)), max(1, int(self._EDGE_S * sr_hz))
        self._offset = 0
        self._tail = np.zeros(0, dtype=np.float64)  # the last 10 ms of signal seen
        self._open: tuple[int, np.ndarray] | None = None  # a zero run going on: its start, the 10 ms before it
        self._waiting: list[tuple[int, int, np.ndarray, np.ndarray]] = []  # closed runs still short of 10 ms after
        self._runs: list[ZeroRun] = []  # summaries only: a long edited file has thousands of runs
        self._levels = np.zeros(141, dtype=np.int64)  # 10 ms RMS histogram, 1 dB bins from -140 dBFS

    def update(self, mono: np.ndarray) -> None:
        mono = np.asarray(mono, dtype=np.float64)
        if not len(mono):
            return
        self._histogram(mono)
        self._fill_waiting(mono)
        zero = np.abs(mono) < 1e-7
        bounds = np.concatenate([[0], np.flatnonzero(np.diff(zero.astype(np.int8))) + 1, [len(mono)]])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            if zero[a]:
                if self._open is None:
                    before = np.concatenate([self._tail, mono[:a]])[-self._side_n :]
                    self._open = (self._offset + a, before)
                continue
            if self._open is not None:
                start, before = self._open
                n = self._offset + a - start
                if len(before) and self.min_n <= n <= self.max_n:
                    run = (start, n, before, mono[a : min(b, a + self._side_n)])
                    # signal that reaches the block's end may go on in the next block
                    if b == len(mono) and len(run[3]) < self._side_n:
                        self._waiting.append(run)
                    else:
                        self._runs.append(self._zero_run(*run))
                self._open = None
        self._tail = np.concatenate([self._tail, mono])[-self._side_n :]
        self._offset += len(mono)

    def _fill_waiting(self, mono: np.ndarray) -> None:
        # signal after a run that ended at a block's edge: its 10 ms continue in this block, up to the next zero
        if not self._waiting:
            return
        zeros = np.flatnonzero(np.abs(mono) < 1e-7)
        live = mono[: zeros[0] if len(zeros) else len(mono)]
        self._waiting = [
            (s, n, before, np.concatenate([after, live[: self._side_n - len(after)]]))
            for s, n, before, after in self._waiting
        ]
        if len(live) < len(mono):  # the signal stopped: what was gathered is all there is
            self._runs += [self._zero_run(*w) for w in self._waiting]
            self._waiting = []
        self._settle()

    def _settle(self) -> None:
        self._runs += [self._zero_run(*w) for w in self._waiting if len(w[3]) >= self._side_n]
        self._waiting = [w for w in self._waiting if len(w[3]) < self._side_n]

    def _histogram(self, mono: np.ndarray) -> None:
        frames = len(mono) // self._side_n
        if frames:
            rms = np.sqrt(np.mean(mono[: frames * self._side_n].reshape(frames, self._side_n) ** 2, axis=1))
            db = np.clip(np.round(20 * np.log10(np.maximum(rms, 1e-7))) + 140, 0, 140).astype(int)
            self._levels += np.bincount(db, minlength=141)

    @property
    def loud_level_db(self) -> float:
        counts = self._levels.copy()
        counts[: 140 - 90 + 1] = 0  # digital silence and the dither under -90 dBFS say nothing of the level
        if not counts.sum():
            return float("-inf")
        return float(np.searchsorted(np.cumsum(counts), 0.95 * counts.sum()) - 140)

    @property
    def zero_runs(self) -> list[ZeroRun]:
        return [*self._runs, *(self._zero_run(*w) for w in self._waiting)]

    def _zero_run(self, start: int, n: int, before: np.ndarray, after: np.ndarray) -> ZeroRun:
        return ZeroRun(
            float(start / self.sr_hz),
            float(n / self.sr_hz),
            _rms_db(before),
            _rms_db(after),
            _peak(before[-self._edge_n :]) >= self.ABRUPT * _rms(before),
            _peak(after[: self._edge_n]) >= self.ABRUPT * _rms(after),
        )

    def is_dropout(self, run: ZeroRun) -> bool:
        floor = self.loud_level_db - self.SPEECH_LEVEL_DB
        return run.abrupt_before and run.abrupt_after and run.level_before_db >= floor and run.level_after_db >= floor

    @property
    def dropouts(self) -> list[float]:
        """Start times (s) of the dropouts."""
        return [r.start_s for r in self.zero_runs if self.is_dropout(r)]

    @property
    def digital_silence(self) -> dict[str, float]:
        """The zero runs that are not dropouts: how many, and how long in all (s)."""
        quiet = [r for r in self.zero_runs if not self.is_dropout(r)]
        return {"runs": len(quiet), "total_s": round(float(sum(r.duration_s for r in quiet)), 3)}


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0


def _rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(max(_rms(x), 1e-12)))


def _peak(x: np.ndarray) -> float:
    return float(np.max(np.abs(x))) if len(x) else 0.0


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

    Defaults: fail on clipping above 0.1 % of samples, any dropout (zeros cutting into sound), SNR under
    10 dB, no speech found, or less than 5 % speech; review on an SNR that no pause lets us measure,
    bandwidth under 4 kHz, DNSMOS OVRL under 2.5, more than 30 clicks a minute, or digital silence between
    sounds (edited or gated: recorded, not failed).
    """

    max_clipping_ratio: float = 0.001
    max_dropouts: int = 0
    min_snr_db: float = 10.0
    min_speech_ratio: float = 0.05
    review_bandwidth_hz: float = 4000.0
    review_dnsmos_ovrl: float = 2.5
    review_clicks_per_min: float = 30.0
    review_digital_silence_runs: int = 0


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
    quiet = m.get("digital_silence") or {}
    if quiet.get("runs", 0) > cfg.review_digital_silence_runs:
        review.append(
            f"{quiet['runs']} stretch(es) of digital silence between sounds ({quiet['total_s']:.2f} s in all):"
            " an edited, noise-gated or born-digital transfer; check that no speech was cut"
        )
    if m.get("clicks_per_min", 0) > cfg.review_clicks_per_min:
        review.append(f"{m['clicks_per_min']:.0f} clicks a minute (> {cfg.review_clicks_per_min:g})")
    if fail:
        return GateDecision("fail", tuple(fail + review))
    return GateDecision("review" if review else "pass", tuple(review))
