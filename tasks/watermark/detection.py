"""Detection: undo small speed and tempo changes by search, find the frame start by the sync cells, decode.

The received log spectrogram is band-averaged at each candidate frequency scale (speed changes move the
bands; tempo changes do not) and interpolated at each candidate time scale and slot phase. Each candidate's
cells are whitened and folded modulo the message frame, over the whole clip and over two-frame windows, so
every repetition adds up, a crop or a delay only rotates the fold, and a marked clip inside unmarked audio is
found in its window. The candidates with the best sync scores are decoded by soft Viterbi, the best synced
and the most promising of them to a list of messages, of which the likeliest whose CRC holds is taken.

The decision: a wrong payload names the wrong clip and is worse than none. A candidate is accepted only when
the key-seeded 24-bit CRC holds (noise passes it once in 16.7 million tries) and its correlation with the
pattern it implies reaches ``MIN_SCORE`` standard deviations (which the likeliest path of unmarked audio
mostly does: the CRC is the guard). Tried per clip: ``LIST_PATHS`` messages for each of the ``LISTED_BY_SYNC``
best synced candidates and the ``BEST_FITTING`` others whose likeliest path fits best, and one for each other
of the ``TOP_CANDIDATES``, 498, so one unmarked clip in 34,000; and ``PROMISING_PATHS`` for each promising
candidate (_decode). Promising ones are chosen by a statistic that looks at the CRC, so each counts as if every
candidate under the gap threshold had been tried; on unmarked audio they are rare (3 in 300 clips of 5 and
10 s), and for none of the 44 candidates of those clips with gaps under 1.5 was the CRC-true message nearest the
likeliest path among its 256 likeliest. bench/watermark.py counts false positives over thousands of unmarked
trials.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from heirloom.errors import WatermarkError
from tasks.watermark.coding import CODED_BITS, PAYLOAD_BITS, conv_encode, crc_holds, list_viterbi, with_crc
from tasks.watermark.embedding import check_length, is_silent, mono
from tasks.watermark.keys import WatermarkKey
from tasks.watermark.layout import (
    BAND_BINS,
    BANDS,
    BIN_LO,
    EDGE_BINS,
    FRAME_SLOTS,
    MIN_SECONDS,
    RATE_HZ,
    REVERB_SKIP_FRAMES,
    SLOT_FRAMES,
    SPEED_SEARCH,
    SYNC_CELLS,
    Layout,
    log_power,
    read,
    stft,
    whiten,
)

_STEPS = round(SPEED_SEARCH / 0.005)
SCALES = tuple(1 + 0.005 * k for k in range(-_STEPS, _STEPS + 1))  # +-4 % in 0.5 % steps, speed and tempo
MIN_SCORE = 5.0
TOP_CANDIDATES = 64
# List decoding is for the best sync candidates: in 130 marked trials (hall, hall chain, crop, concatenation,
# noise) the best accepted candidate was among the five best synced but once (a hall clip's 35th, which its
# likeliest path decodes as well); and for the few whose payload looks right (_decode), with a longer list.
# On the quick bench's 30 hall clips, with the rate-1/2 code, 16 by sync: hall 26, hall chain 21; 12 by sync
# and 4 promising at 8 paths: 27, 21; 12 and 2 promising at 64 paths: 28, 22 (as 4 at 64 or 1 at 128).
# Later, with features limited to 12 dB and a 2.6 dB room target: in the 9 of 240 hall chain clips still
# missed, the right alignment ranked 11th to 170th by sync (z of its sync cells 3.5-5.6, of its data cells 7.6-10),
# and in three of them the right message was 0th, 5th and 61st on its list. 2 more candidates by best-path fit,
# at 32 paths, took the hall chain 231 -> 233 and the hall 238 -> 239 (at 64 paths: 234, but detection on unmarked
# audio in bench/watermark.py 149x -> 115x real time, against 139x at 32; 4 by fit: 234; the 128 best synced
# decoded instead of 64: 232). On 240 fresh clips they changed nothing.
LISTED_BY_SYNC = 12
PROMISING = 2
BEST_FITTING = 2
PROMISING_PATHS = 64
PROMISING_GAP = 1.2
# With the rate-1/2 code, 8 paths took the hall from 8 to 10 of 10 clips against the best path alone and 16
# gained nothing more; with rate 1/3, 16 paths against 8 on 70 clips of 10 s: hall 64 -> 65, hall chain 56 -> 58.
# With features limited to 12 dB (layout.centre), 32 against 16 on 240 clips: hall 234 -> 235, hall chain
# 222 -> 226 (64 and 128 paths: no more; 32 paths for the 8 or 6 best synced: 224, 221), for detection 16 %
# slower on unmarked audio, where every list is walked.
LIST_PATHS = 32


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


@lru_cache(maxsize=8)
def _band_matrices(f_scales: tuple[float, ...], bins: int, device: torch.device) -> torch.Tensor:
    """``(bins, f scales * BANDS)``: :func:`_band_matrix` of every scale side by side, for one product."""
    return torch.cat([_band_matrix(f, bins, device) for f in f_scales], dim=1)


def _sample_cells(logp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[tuple[float, str]]]:
    """Cells of every candidate (scale, mode, slot phase): ``(candidates, slots, BANDS)``, over whole slots
    and over slots without their first ``REVERB_SKIP_FRAMES`` frames (for :func:`layout.read`'s ``reverb``).

    Bands are averaged first (a matrix product per frequency scale), then frames are interpolated at
    ``phase + n / scale``: the same cells as resampling the whole spectrogram, at a sixth of the work.
    """
    frames, bins = logp.shape
    dev = logp.device
    slots = int((frames - 1) * min(SCALES) - SLOT_FRAMES) // SLOT_FRAMES
    n = torch.arange(max(slots, 0) * SLOT_FRAMES, device=dev, dtype=torch.float32)
    phases = torch.arange(SLOT_FRAMES, device=dev, dtype=torch.float32)
    todo = _candidates()
    f_scales = sorted({f for _, f, _ in todo})
    by_f = (logp @ _band_matrices(tuple(f_scales), bins, dev)).view(frames, len(f_scales), BANDS).transpose(0, 1)
    t_scale = torch.tensor([t for t, _, _ in todo], device=dev)
    pos = (phases[None, :, None] + n[None, None, :] / t_scale[:, None, None]).clamp(max=frames - 1.001)
    lo = pos.long().flatten(1)  # (candidates, phases * frames)
    w = pos.flatten(1) - lo
    which = torch.tensor([f_scales.index(f) for _, f, _ in todo], device=dev)
    rows = (lo + which[:, None] * frames).flatten()  # into by_f's (f scales * frames) rows
    flat = by_f.flatten(0, 1)
    framed = torch.lerp(flat.index_select(0, rows), flat.index_select(0, rows + 1), w.reshape(-1, 1))
    framed = framed.reshape(len(todo) * SLOT_FRAMES, slots, SLOT_FRAMES, BANDS)
    labels = [(t, mode) for t, _, mode in todo for _ in range(SLOT_FRAMES)]
    late = framed[:, :, REVERB_SKIP_FRAMES:].sum(dim=2)
    whole = (framed[:, :, :REVERB_SKIP_FRAMES].sum(dim=2) + late) / SLOT_FRAMES
    return whole, late / (SLOT_FRAMES - REVERB_SKIP_FRAMES), labels


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
    x16 = mono(audio, sr_hz)
    check_length(len(x16) / RATE_HZ)
    if is_silent(x16):
        return []
    dev = torch.device(device)
    layout = Layout.from_key(key).to(dev)
    logp = log_power(stft(torch.from_numpy(x16).to(dev))).T  # (frames, bins)
    sampled, late, labels = _sample_cells(logp)
    slots = sampled.shape[1]
    if slots < FRAME_SLOTS:  # MIN_SECONDS is set so that this cannot happen to a clip check_length let pass
        raise WatermarkError(f"{len(x16) / RATE_HZ:.2f} s is too short to search; at least {MIN_SECONDS:.2f} s")
    # the whole clip, and windows of two frames: a marked clip inside unmarked audio is found in its window;
    # each read as it is and as heard in a room (cells are read once, each span whitened on its own)
    spans = [(0, slots)] + [(a, a + 2 * FRAME_SLOTS) for a in range(0, slots - 3 * FRAME_SLOTS + 1, FRAME_SLOTS)]
    readings = [read(sampled), read(late, reverb=True)]
    fold = torch.cat([_fold(whiten(w[:, a:b], alive[:, a:b])) for w, alive in readings for a, b in spans])
    plain = labels * len(spans)
    labels = plain + [(t, m + "+room") for t, m in plain]
    z = torch.einsum("btk,stk->bs", fold, _rotations(layout.sync)) / SYNC_CELLS**0.5
    top = torch.topk(z.flatten(), TOP_CANDIDATES)
    cand, shift = top.indices // FRAME_SLOTS, top.indices % FRAME_SLOTS
    rot = _aligned(fold[cand], shift)
    soft = _soft_bits(rot, layout)
    chosen, holds = _decode(soft, layout.crc_init)
    coded = torch.tensor(conv_encode(chosen), dtype=torch.float32, device=dev)
    expected = 2 * coded - 1
    scores = _scores(rot, layout.pattern(coded)).cpu().numpy()
    agreement = ((soft * expected).clamp(min=0).sum(1) / soft.abs().sum(1).clamp(min=1e-9)).cpu().numpy()
    out = []
    for i, bits in enumerate(chosen):
        t_scale, mode = labels[int(cand[i])]
        out.append(
            Candidate(
                bytes(np.packbits(bits[:PAYLOAD_BITS].astype(np.uint8))),
                bool(holds[i]),
                float(scores[i]),
                float(top.values[i]),
                float(agreement[i]),
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


def _aligned(fold: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Each candidate's fold ``(candidates, FRAME_SLOTS, BANDS)`` rotated to start at its frame start."""
    slots = (torch.arange(FRAME_SLOTS, device=fold.device) + shift[:, None]) % FRAME_SLOTS
    return fold.gather(1, slots[..., None].expand(-1, -1, BANDS))


def _scores(rot: torch.Tensor, pattern: torch.Tensor) -> torch.Tensor:
    """Per candidate: the correlation of every cell (sync and data) with the pattern its decoded message
    implies, in units of its standard deviation on unmarked audio."""
    return (rot * pattern).sum(dim=(1, 2)) / pattern[0].numel() ** 0.5


def _soft_bits(rot: torch.Tensor, layout: Layout) -> torch.Tensor:
    """Per candidate: soft coded bits (positive means 1) from its aligned fold."""
    data = layout.bit >= 0
    signed = (rot * layout.sign)[:, data]
    idx = layout.bit[data]
    soft = torch.zeros(len(rot), CODED_BITS, device=rot.device).index_add_(1, idx, signed)
    return soft * (2 * layout.scramble - 1)


def _decode(soft: torch.Tensor, crc_init: int) -> tuple[np.ndarray, np.ndarray]:
    """Messages ``(candidates, MESSAGE_BITS)`` and whether each one's CRC holds, for soft bits in sync order:
    each candidate's likeliest path, or where it fails its CRC, the likeliest path on a short list that holds,
    for the first ``LISTED_BY_SYNC`` candidates and the ``BEST_FITTING`` others whose likeliest path agrees best
    with their soft bits (the weight it agrees with less the weight it contradicts, as a share of all of it,
    blind to the CRC) (``LIST_PATHS`` each), and for the ``PROMISING`` most promising of the rest, if any
    (``PROMISING_PATHS`` each).

    Promising: the likeliest path's payload with its own CRC in place of the decoded one is nearly as likely
    as the path itself (the metric gap, in units of the soft bits' norm, is under ``PROMISING_GAP``), as when
    the payload is right and only the CRC part has errors. On 90 clips in a hall, in the hall chain and
    cropped, candidates whose payload was right had gaps of 1.0 at most, at sync ranks up to 54; in 230
    unmarked clips the smallest gap of a clip was 0.65 at least, under 1.15 in 1 %, and 1.94 in the median,
    so unmarked audio rarely pays for these lists.
    """
    best = list_viterbi(soft, 1).cpu().numpy()[:, 0]
    forced = with_crc(best[:, :PAYLOAD_BITS], crc_init)
    holds = (forced == best).all(axis=1)
    sign = torch.tensor(conv_encode(np.concatenate([best, forced])) * 2 - 1, dtype=soft.dtype, device=soft.device)
    metric = (sign.view(2, *soft.shape) * soft).sum(-1)
    gap = ((metric[0] - metric[1]) / soft.square().sum(-1).sqrt().clamp(min=1e-9)).cpu().numpy()
    others = np.arange(LISTED_BY_SYNC, len(gap))
    others = others[~holds[others]]
    fit = (metric[0] / soft.abs().sum(-1).clamp(min=1e-9)).cpu().numpy()
    fitting = others[np.argsort(-fit[others], kind="stable")[:BEST_FITTING]]
    others = others[~np.isin(others, fitting) & (gap[others] < PROMISING_GAP)]
    promising = others[np.argsort(gap[others], kind="stable")[:PROMISING]]
    listed_first = np.concatenate([np.arange(min(LISTED_BY_SYNC, len(gap))), fitting])
    for group, paths in ((listed_first, LIST_PATHS), (promising, PROMISING_PATHS)):
        group = group[~holds[group]]
        if not len(group):
            continue
        listed = list_viterbi(soft[torch.as_tensor(group, device=soft.device)], paths).cpu().numpy()
        listed_holds = crc_holds(listed, crc_init)
        best[group] = listed[np.arange(len(group)), np.argmax(listed_holds, axis=1)]
        holds[group] = listed_holds.any(axis=1)
    return best, holds


def _confidence(score: float) -> float:
    """0.5 at the decision threshold, approaching 1 at twice it."""
    return float(min(1.0, 0.5 + 0.5 * (score - MIN_SCORE) / MIN_SCORE))
