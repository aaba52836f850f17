"""Detection: undo small speed and tempo changes by search, find the frame start by the sync cells, decode.

The received log spectrogram is band-averaged at each candidate frequency scale (speed changes move the
bands; tempo changes do not) and interpolated at each candidate time scale and slot phase. Each candidate's
cells are whitened and folded modulo the message frame, over the whole clip and over two-frame windows, so
every repetition adds up, a crop or a delay only rotates the fold, and a marked clip inside unmarked audio is
found in its window. The candidates with the best sync scores are decoded with a soft list Viterbi, and the
most likely of each candidate's ``LIST_PATHS`` messages whose CRC holds is its message.

The decision: a wrong payload names the wrong clip and is worse than none. A candidate is accepted only when
the key-seeded 24-bit CRC holds (noise passes it once in 16.7 million tries, and at most
``TOP_CANDIDATES * LIST_PATHS`` = 128 messages are tried per clip: one unmarked clip in 131,000) and its
correlation with the pattern it implies reaches ``MIN_SCORE`` standard deviations. bench/watermark.py counts
false positives over thousands of unmarked trials.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from tasks.watermark.coding import CODED_BITS, PAYLOAD_BITS, conv_encode, crc_holds, list_viterbi
from tasks.watermark.embedding import check_length, is_silent, mono16k
from tasks.watermark.keys import WatermarkKey
from tasks.watermark.layout import (
    BAND_BINS,
    BANDS,
    BIN_LO,
    EDGE_BINS,
    FRAME_SLOTS,
    REVERB_SKIP_FRAMES,
    SLOT_FRAMES,
    SYNC_CELLS,
    Layout,
    log_power,
    stft,
    whiten,
)

SCALES = tuple(1 + 0.005 * k for k in range(-8, 9))  # +-4 % in 0.5 % steps, for speed and for tempo
MIN_SCORE = 5.0
# In every marked trial on bench/watermark.py's clips (hall, hall chain, crop, concatenation, noise) the
# accepted candidate was among the five best sync scores; 64 decoded no more clips, at four times the work.
TOP_CANDIDATES = 16
LIST_PATHS = 8  # hall: 8 -> 10 of 10 clips against the best path alone; at 16 paths, noisy codewords gain 0.3 %


@dataclass(frozen=True, slots=True)
class Detection:
    found: bool
    payload: bytes | None = None
    confidence: float = 0.0
    score: float = 0.0
    sync_z: float = 0.0
    agreement: float = 0.0
    scale: float = 1.0
    mode: str = ""
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "found": self.found,
            "payload": self.payload.hex() if self.payload else None,
            "confidence": round(self.confidence, 4),
            "score": round(self.score, 2),
            "sync_z": round(self.sync_z, 2),
            "agreement": round(self.agreement, 4),
            "scale": self.scale,
            "mode": self.mode,
            "reason": self.reason,
        }


def _candidates() -> list[tuple[float, float, str]]:
    out = [(1.0, 1.0, "none")]
    for s in SCALES:
        if s != 1.0:
            out += [(s, s, "speed"), (s, 1.0, "tempo")]
    return out


@lru_cache(maxsize=64)
def _band_matrix(f_scale: float, bins: int, device: torch.device) -> torch.Tensor:
    """``(bins, BANDS)``: linear interpolation at ``k * f_scale`` for each band's inner bins, averaged."""
    m = torch.zeros(bins, BANDS, device=device)
    for band in range(BANDS):
        first = BIN_LO + band * BAND_BINS
        inner = range(first + EDGE_BINS, first + BAND_BINS - EDGE_BINS)
        for k in inner:
            pos = min(k * f_scale, bins - 1.001)
            lo, w = int(pos), pos - int(pos)
            m[lo, band] += (1 - w) / len(inner)
            m[lo + 1, band] += w / len(inner)
    return m


def _sample_cells(logp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[tuple[float, str]]]:
    """Cells of every candidate (scale, mode, slot phase): ``(candidates, slots, BANDS)``, over whole slots
    and over slots without their first ``REVERB_SKIP_FRAMES`` frames (for :func:`whiten`'s ``reverb``).

    Bands are averaged first (a matrix product per frequency scale), then frames are interpolated at
    ``phase + n / scale``: the same cells as resampling the whole spectrogram, at a sixth of the work.
    """
    frames, bins = logp.shape
    dev = logp.device
    slots = int((frames - 1) * min(SCALES) - SLOT_FRAMES) // SLOT_FRAMES
    n = torch.arange(max(slots, 0) * SLOT_FRAMES, device=dev, dtype=torch.float32)
    phases = torch.arange(SLOT_FRAMES, device=dev, dtype=torch.float32)
    by_f = {f: logp @ _band_matrix(f, bins, dev) for f in sorted({f for _, f, _ in _candidates()})}
    out, late, labels = [], [], []
    for t_scale, f_scale, mode in _candidates():
        pos = (phases[:, None] + n[None, :] / t_scale).clamp(max=frames - 1.001)
        lo = pos.long()
        w = (pos - lo)[..., None]
        bands = by_f[f_scale]
        framed = (bands[lo] * (1 - w) + bands[lo + 1] * w).reshape(SLOT_FRAMES, slots, SLOT_FRAMES, BANDS)
        out.append(framed.mean(dim=2))
        late.append(framed[:, :, REVERB_SKIP_FRAMES:].mean(dim=2))
        labels += [(t_scale, mode)] * SLOT_FRAMES
    return torch.cat(out), torch.cat(late), labels


def _fold(w: torch.Tensor) -> torch.Tensor:
    """Sum the repetitions of ``(batch, slots, BANDS)`` modulo the frame, scaled to unit variance under noise."""
    batch, slots, _ = w.shape
    reps = -(-slots // FRAME_SLOTS)
    pad = torch.zeros(batch, reps * FRAME_SLOTS - slots, BANDS, device=w.device)
    folded = torch.cat([w, pad], dim=1).reshape(batch, reps, FRAME_SLOTS, BANDS).sum(dim=1)
    count = torch.full((FRAME_SLOTS,), float(slots // FRAME_SLOTS), device=w.device)
    count[: slots % FRAME_SLOTS] += 1
    return folded / count.sqrt()[None, :, None]


def _rotations(pattern: torch.Tensor) -> torch.Tensor:
    """``(FRAME_SLOTS, FRAME_SLOTS, BANDS)``: the pattern as it lies in the fold for each frame start."""
    return torch.stack([torch.roll(pattern, s, dims=0) for s in range(FRAME_SLOTS)])


@dataclass(frozen=True, slots=True)
class Candidate:
    """One decoded sync candidate, before the decision."""

    payload: bytes
    crc_ok: bool
    score: float
    sync_z: float
    agreement: float
    scale: float
    mode: str


def candidates(
    audio: np.ndarray, sr_hz: int, key: WatermarkKey, *, device: str | torch.device = "cpu"
) -> list[Candidate]:
    """The best sync candidates of ``audio``, decoded, best score first (empty for silence)."""
    x16 = mono16k(audio, sr_hz)
    check_length(len(x16))
    if is_silent(x16):
        return []
    dev = torch.device(device)
    layout = Layout.from_key(key).to(dev)
    logp = log_power(stft(torch.from_numpy(x16).to(dev))).T  # (frames, bins)
    sampled, late, labels = _sample_cells(logp)
    slots = sampled.shape[1]
    if slots < FRAME_SLOTS:
        check_length(0)
    # the whole clip, and windows of two frames: a marked clip inside unmarked audio is found in its window;
    # each read as it is and as heard in a room
    spans = [(0, slots)] + [(a, a + 2 * FRAME_SLOTS) for a in range(0, slots - 3 * FRAME_SLOTS + 1, FRAME_SLOTS)]
    fold = torch.cat(
        [_fold(whiten(sampled[:, a:b])) for a, b in spans]
        + [_fold(whiten(late[:, a:b], reverb=True)) for a, b in spans]
    )
    plain = labels * len(spans)
    labels = plain + [(t, m + "+room") for t, m in plain]
    z = torch.einsum("btk,stk->bs", fold, _rotations(layout.sync)) / SYNC_CELLS**0.5
    top = torch.topk(z.flatten(), TOP_CANDIDATES)
    cand, shift = top.indices // FRAME_SLOTS, top.indices % FRAME_SLOTS
    soft = _soft_bits(fold[cand], shift, layout)
    paths = list_viterbi(soft, LIST_PATHS).cpu().numpy()
    holds = crc_holds(paths, layout.crc_init)
    # each candidate's likeliest message whose CRC holds, else its likeliest
    chosen = paths[np.arange(len(paths)), np.argmax(holds, axis=1)]
    expected = torch.tensor(conv_encode(chosen) * 2 - 1, dtype=torch.float32, device=dev)
    out = []
    for i, (bits, expect) in enumerate(zip(chosen, expected, strict=True)):
        t_scale, mode = labels[int(cand[i])]
        out.append(
            Candidate(
                bytes(np.packbits(bits[:PAYLOAD_BITS].astype(np.uint8))),
                bool(holds[i].any()),
                _score(fold[cand[i]], int(shift[i]), expect, layout),
                float(top.values[i]),
                float((soft[i] * expect).clamp(min=0).sum() / soft[i].abs().sum().clamp(min=1e-9)),
                round(t_scale, 4),
                mode,
            )
        )
    return sorted(out, key=lambda c: -c.score)


def detect(audio: np.ndarray, sr_hz: int, key: WatermarkKey, *, device: str | torch.device = "cpu") -> Detection:
    """Look for a watermark made with ``key`` in ``audio`` (``(n,)`` or ``(n, channels)``): the payload of the
    best candidate whose CRC holds and whose score reaches ``MIN_SCORE``, or none."""
    return decide(candidates(audio, sr_hz, key, device=device))


def decide(found: list[Candidate]) -> Detection:
    """The decision rule: the best candidate whose key-seeded CRC holds and whose score reaches ``MIN_SCORE``."""
    if not found:
        return Detection(False, reason="silent: no watermark can be present")
    for c in found:
        if c.crc_ok and c.score >= MIN_SCORE:
            return Detection(True, c.payload, _confidence(c.score), c.score, c.sync_z, c.agreement, c.scale, c.mode)
    return Detection(False, reason="no candidate passed the CRC and score checks")


def _score(fold: torch.Tensor, shift: int, expect: torch.Tensor, layout: Layout) -> float:
    """Correlation of every cell (sync and data) with the pattern the decoded payload implies, in units of
    its standard deviation on unmarked audio."""
    rot = torch.roll(fold, -shift, dims=0)
    coded_sign = expect * (2 * layout.scramble - 1)
    pattern = torch.where(layout.bit >= 0, coded_sign[layout.bit.clamp(min=0)] * layout.sign, layout.sync)
    return float((rot * pattern).sum() / pattern.numel() ** 0.5)


def _soft_bits(fold: torch.Tensor, shift: torch.Tensor, layout: Layout) -> torch.Tensor:
    """Per candidate: soft coded bits (positive means 1), from the fold rotated to its frame start."""
    rot = torch.stack([torch.roll(f, -int(s), dims=0) for f, s in zip(fold, shift, strict=True)])
    data = layout.bit >= 0
    signed = (rot * layout.sign)[:, data]
    idx = layout.bit[data]
    soft = torch.zeros(len(rot), CODED_BITS, device=rot.device).index_add_(1, idx, signed)
    return soft * (2 * layout.scramble - 1)


def _confidence(score: float) -> float:
    """0.5 at the decision threshold, approaching 1 at twice it."""
    return float(min(1.0, 0.5 + 0.5 * (score - MIN_SCORE) / MIN_SCORE))
