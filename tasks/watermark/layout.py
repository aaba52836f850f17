"""Where the mark lives: a grid of time-frequency cells over 375-3375 Hz (inside a telephone's band, below
every codec's cut-off), 16 bands by 96 ms slots, in 3.07 s message frames that repeat end to end.

Each cell's feature is its mean log power against its neighbouring bands', so loudness and much of the
host's envelope cancel, and what remains is mostly what the mark changed. The key decides which cells carry
sync and which carry each coded bit, with random signs, so that every bit is spread over the whole frame and
the whole band.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from tasks.watermark.coding import CODED_BITS
from tasks.watermark.keys import WatermarkKey

RATE_HZ = 16000
N_FFT = 512
HOP = 256
BIN_LO = 12
BANDS = 16
BAND_BINS = 6
EDGE_BINS = 1  # left out of the feature: a neighbouring band's gain leaks this far
BIN_HI = BIN_LO + BANDS * BAND_BINS
SLOT_FRAMES = 6
FRAME_SLOTS = 32
SYNC_CELLS = 128
SYNC_GROUP = 4
FRAME_S = FRAME_SLOTS * SLOT_FRAMES * HOP / RATE_HZ
SPEED_SEARCH = 0.04  # detection undoes speed and tempo changes of up to 4 %
# The shortest clip detection can search at every scale: a frame of slots, one slot more for the phase
# search, all read at the slowest scale (it needs 3.31 s; a frame alone, 3.10 s, failed the search).
MIN_SECONDS = ((FRAME_SLOTS + 1) * SLOT_FRAMES / (1 - SPEED_SEARCH) + 1) * HOP / RATE_HZ
FEATURE_CLAMP_DB = 12.0
LIVE_RANGE_DB = 40.0
LIVE_FLOOR_DB = -75.0
REVERB_LEAK = 0.5
REVERB_SKIP_FRAMES = 1
# The room both sides plan for: a hall of RT60 0.7 s whose late reverberation carries as much energy as the
# direct sound (bench/watermark.py's hall_phone). Its power falls by 60 dB per RT60.
ROOM_RT60_S = 0.7
ROOM_DECAY_DB_PER_FRAME = 60 * HOP / RATE_HZ / ROOM_RT60_S
_ROOM_TAIL_FRAMES = int(40 / ROOM_DECAY_DB_PER_FRAME)  # what is left after 40 dB adds 0.01 %
TAIL_SOFTNESS_DB = 3.0


@dataclass(frozen=True)
class Layout:
    """Key-derived patterns, as ``(FRAME_SLOTS, BANDS)`` tensors."""

    sync: torch.Tensor  # +-1 on sync cells, 0 elsewhere
    bit: torch.Tensor  # coded-bit index of each data cell, -1 on sync cells
    sign: torch.Tensor  # +-1 spreading sign of each data cell
    group: torch.Tensor  # embedding group: the coded bit, or CODED_BITS + k for the k-th run of sync cells
    scramble: torch.Tensor  # (CODED_BITS,) 0/1 added to the coded bits
    crc_init: int

    @classmethod
    @lru_cache(maxsize=8)  # 0.6 ms to draw the patterns, against 25 ms for an embedding
    def from_key(cls, key: WatermarkKey) -> Layout:
        cells = FRAME_SLOTS * BANDS
        order = key.rng("cells").permutation(cells)
        signs = key.rng("signs").choice([-1.0, 1.0], size=cells)
        sync = np.zeros(cells)
        sync[order[:SYNC_CELLS]] = signs[order[:SYNC_CELLS]]
        bit = np.full(cells, -1)
        bit[order[SYNC_CELLS:]] = np.arange(cells - SYNC_CELLS) % CODED_BITS
        sign = np.where(bit >= 0, signs, 0.0)
        group = bit.copy()
        group[order[:SYNC_CELLS]] = CODED_BITS + np.arange(SYNC_CELLS) // SYNC_GROUP
        shape = (FRAME_SLOTS, BANDS)
        return cls(
            torch.tensor(sync.reshape(shape), dtype=torch.float32),
            torch.tensor(bit.reshape(shape)),
            torch.tensor(sign.reshape(shape), dtype=torch.float32),
            torch.tensor(group.reshape(shape)),
            torch.tensor(key.rng("scramble").integers(0, 2, CODED_BITS), dtype=torch.float32),
            key.crc_init(),
        )

    def pattern(self, coded: torch.Tensor) -> torch.Tensor:
        """The +-1 sign of every cell ``(..., FRAME_SLOTS, BANDS)`` for coded bits ``(..., CODED_BITS)`` (0/1):
        each data cell its scrambled bit's sign (0 -> +1) times its spreading sign, each sync cell its own."""
        bit_sign = 1 - 2 * ((coded + self.scramble) % 2)
        return torch.where(self.bit >= 0, bit_sign[..., self.bit.clamp(min=0)] * self.sign, self.sync)

    def to(self, device: torch.device) -> Layout:
        return Layout(
            self.sync.to(device),
            self.bit.to(device),
            self.sign.to(device),
            self.group.to(device),
            self.scramble.to(device),
            self.crc_init,
        )


def window(device: torch.device, n_fft: int = N_FFT) -> torch.Tensor:
    return torch.hann_window(n_fft, device=device)


def _sizes(rate_hz: int) -> tuple[int, int]:
    """Window and hop at ``rate_hz`` that keep the 16 kHz STFT's bin spacing and frame times."""
    return N_FFT * rate_hz // RATE_HZ, HOP * rate_hz // RATE_HZ


def stft(x: torch.Tensor, rate_hz: int = RATE_HZ) -> torch.Tensor:
    """``(bins, frames)`` complex STFT of a 16 kHz signal, or of one at ``rate_hz`` with the same bins (up to
    its Nyquist frequency), frames and levels."""
    n_fft, hop = _sizes(rate_hz)
    spec = torch.stft(x, n_fft, hop, window=window(x.device, n_fft), center=True, return_complex=True)
    return spec * (RATE_HZ / rate_hz) if rate_hz != RATE_HZ else spec


def istft(spec: torch.Tensor, length: int, rate_hz: int = RATE_HZ) -> torch.Tensor:
    """The inverse of :func:`stft`, ``length`` samples long.

    Written out because with the hop at half the window the overlap-add is two slices, and torch.istft,
    which rebuilds and checks the window envelope in general form on every call, took three times as long
    for the same samples (the embedder resynthesises once per pass).
    """
    n_fft, hop = _sizes(rate_hz)
    win = window(spec.device, n_fft)
    frames = torch.fft.irfft(spec, n_fft, dim=0).T * (win * (rate_hz / RATE_HZ))
    count = frames.shape[0]
    out = torch.zeros((count + 1) * hop, device=spec.device)
    envelope = torch.zeros_like(out)
    out[: count * hop] += frames[:, :hop].reshape(-1)
    out[hop:] += frames[:, hop:].reshape(-1)
    envelope[: count * hop] += win[:hop].square().repeat(count)
    envelope[hop:] += win[hop:].square().repeat(count)
    start = n_fft // 2
    return out[start : start + length] / envelope[start : start + length].clamp(min=1e-11)


def power(spec: torch.Tensor) -> torch.Tensor:
    return spec.real.square() + spec.imag.square()


def decibels(p: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10(p + 1e-10)


def log_power(spec: torch.Tensor) -> torch.Tensor:
    return decibels(power(spec))


def cells(logp: torch.Tensor, *, skip: int = 0) -> torch.Tensor:
    """Mean log power per cell: ``(..., frames, BANDS*BAND_BINS)`` to ``(..., slots, BANDS)``, leaving out
    each slot's first ``skip`` frames."""
    slots = logp.shape[-2] // SLOT_FRAMES
    x = logp[..., : slots * SLOT_FRAMES, :]
    x = x.reshape(*x.shape[:-2], slots, SLOT_FRAMES, BANDS, BAND_BINS)[..., skip:, :, EDGE_BINS : BAND_BINS - EDGE_BINS]
    return x.mean(dim=(-3, -1))


def centre(c: torch.Tensor, alive: torch.Tensor | None = None) -> torch.Tensor:
    """Each cell against its two neighbouring bands, limited to +-``FEATURE_CLAMP_DB``; 0 on dead cells.

    Speech's envelope moves by tens of dB from slot to slot, much less from band to band (on espeak-ng speech the
    spread is 3.6 dB against its band neighbours, 5.3 dB against its slot neighbours). The limit, about three
    times that spread, keeps a rare onset from outvoting the rest of a bit's cells. At 6 dB it did more harm than
    good: it also stopped the embedder's push on the cells whose host leans hard the wrong way (on one clip, of
    the bits still wrong after embedding, 29 % of the host's cells sat at -6 dB against 9 % of the other bits',
    and 19 % were still there after it), and 6 -> 12 dB took 70 clips of 10 s from hall 66 to 69, hall chain 61 to
    66, crop 69 to 68, at PESQ-WB 4.349 -> 4.364 (16 and 40 dB: 69, 67, 68), and 40 fresh ones (bench/watermark.py
    --seed 8) from 92 to 95 %, 80 to 92 % and 98 %. Dead cells (40 dB under their slot's loudest, or near digital
    silence) are what codecs discard first: they neither carry nor vote. ``alive``: :func:`live` of ``c``, where
    the caller has it already.
    """
    t = F.pad(c, (1, 1), mode="replicate")
    feature = (c - (t[..., :-2] + t[..., 2:]) / 2).clamp(-FEATURE_CLAMP_DB, FEATURE_CLAMP_DB)
    return feature * (live(c) if alive is None else alive)


def room_power(energy: torch.Tensor) -> torch.Tensor:
    """``(bins, frames)`` power as the model room delivers it: the direct sound plus an exponentially
    decaying tail of every earlier frame, scaled so that the tail's energy equals the direct sound's.

    The expected power, not one room's: the embedder cancels what any room of this kind does on average
    (on the hall, cell features correlate 0.91 with this model's and 0.52 with the dry signal's).
    """
    decay = 10 ** (-ROOM_DECAY_DB_PER_FRAME / 10)
    taps = decay ** torch.arange(_ROOM_TAIL_FRAMES, 0, -1, device=energy.device, dtype=energy.dtype)
    level = (1 - decay) / decay  # the taps sum to decay / (1 - decay): scaled, the tail totals 1
    bins = energy.shape[0]
    delayed = F.pad(energy[None], (_ROOM_TAIL_FRAMES, 0))[..., :-1]
    tail = F.conv1d(delayed, taps.expand(bins, 1, -1), groups=bins)[0]  # one filter per bin
    return energy + level * tail


def room_feature(c: torch.Tensor, alive: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`centre` of cells measured without their first ``REVERB_SKIP_FRAMES`` frames (where the
    previous slot's tail lands), less ``REVERB_LEAK`` of the previous slot's: most of what a hall carries over
    from slot to slot taken back out (on the hall: bit accuracy 75 -> 83 %)."""
    w = centre(c, alive)
    return w - REVERB_LEAK * F.pad(w, (0, 0, 1, 0))[..., :-1, :]


def tail_weight(c: torch.Tensor) -> torch.Tensor:
    """Per cell, 0-1: how far it stands above the model room's tail of the louder slots before it.

    A cell well under that tail is mostly the previous syllable's reverberation, and votes little: the
    running maximum of earlier slots, decaying at the room's rate, against the cell's own level, softened by
    ``TAIL_SOFTNESS_DB`` (the hall with a speed change, pink noise and AAC after it: 7 -> 9 of 10 clips).
    """
    per_slot = ROOM_DECAY_DB_PER_FRAME * SLOT_FRAMES
    ramp = per_slot * torch.arange(c.shape[-2], device=c.device, dtype=c.dtype)[:, None]
    lifted = c + ramp
    earlier = F.pad(lifted.cummax(dim=-2).values, (0, 0, 1, 0), value=-1e9)[..., :-1, :]
    return torch.sigmoid((lifted - earlier) / TAIL_SOFTNESS_DB)


def live(c: torch.Tensor) -> torch.Tensor:
    loudest = c.max(dim=-1, keepdim=True).values
    return ((c > loudest - LIVE_RANGE_DB) & (c > LIVE_FLOOR_DB)).float()


def read(c: torch.Tensor, *, reverb: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per cell: its feature, :func:`centre`, and whether it is :func:`live`; with ``reverb``, the cells
    (measured without their first frames) are read as heard in a room: :func:`room_feature` times
    :func:`tail_weight`."""
    alive = live(c)
    return (room_feature(c, alive) * tail_weight(c) if reverb else centre(c, alive)), alive


def whiten(w: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """Features ``(..., slots, BANDS)`` scaled to unit spread over their live cells."""
    spread = (w.square().flatten(-2).sum(-1) / alive.flatten(-2).sum(-1).clamp(min=1)).sqrt() + 1e-6
    return w / spread[..., None, None]
