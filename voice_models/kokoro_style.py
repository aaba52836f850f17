"""Level 1 of a Kokoro fine-tune: the bearer's style table, learnt by gradient descent through the ported model.

Kokoro conditions everything on a 256-d style vector (timbre for the decoder in the first half, prosody for the
predictor in the second), one row per input length. A bearer's table is a shipped voice's table plus one
learnt offset, so the length dependence the model was trained with is kept. The offset is found by Adam on:
- speaker similarity: 1 - cosine between resemblyzer's embedding of the synthesized training texts and the
  bearer's mean embedding of their recordings (resemblyzer's VoiceEncoder run on a mel spectrogram computed in
  torch, so the gradient reaches the audio; its own front end is numpy/librosa);
- pitch: the squared log ratio of the predictor's median voiced F0 to the bearer's, which resemblyzer barely
  sees and a listener hears first;
- an L2 pull towards the starting voice, so the vector stays where the decoder still speaks clearly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from voice_models.kokoro_base import RATE_HZ, STYLE_DIM

EMBED_HZ = 16000
PITCH_WEIGHT = 0.5
PULL_WEIGHT = 0.02


@dataclass(frozen=True)
class Example:
    """One training text (Kokoro token ids) and nothing of its audio: the target is the bearer's voice."""

    ids: tuple[int, ...]


@lru_cache(maxsize=1)
def _mel_basis():
    import librosa
    import torch

    return torch.from_numpy(librosa.filters.mel(sr=EMBED_HZ, n_fft=400, n_mels=40)).float()


def torch_embedding(audio24k):
    """resemblyzer's utterance embedding of a 24 kHz torch waveform, differentiable (unit norm)."""
    import torch
    import torchaudio.functional as AF
    from resemblyzer.hparams import audio_norm_target_dBFS

    from voice_models.evaluation import _encoder

    encoder = _encoder()
    x = AF.resample(audio24k, RATE_HZ, EMBED_HZ)
    # resemblyzer's normalize_volume(increase_only=True): quiet audio is raised to -30 dBFS, loud is left alone
    rms_db = 10 * torch.log10(torch.mean(x**2) + 1e-10)
    gain_db = torch.clamp(audio_norm_target_dBFS - rms_db, min=0.0)
    x = x * 10 ** (gain_db / 20)
    spec = (
        torch.stft(
            x, 400, 160, 400, window=torch.hann_window(400), center=True, pad_mode="constant", return_complex=True
        ).abs()
        ** 2
    )
    mel = (_mel_basis() @ spec).T  # frames x 40, not log: what resemblyzer's encoder was trained on
    _, mel_slices = encoder.compute_partial_slices(len(x), 1.3, 0.75)
    need = mel_slices[-1].stop
    if mel.shape[0] < need:
        mel = torch.nn.functional.pad(mel, (0, 0, 0, need - mel.shape[0]))
    partials = torch.stack([mel[s] for s in mel_slices])
    e = encoder(partials).mean(dim=0)
    return e / e.norm()


def synthesize_torch(model, ids: Sequence[int], ref, f0_out: list | None = None):
    """Kokoro's forward with gradients (the package's own forward is wrapped in no_grad), optionally keeping
    the predicted F0 curve through a hook on the predictor's F0 projection."""
    import torch

    handle = None
    if f0_out is not None:
        handle = model.predictor.F0_proj.register_forward_hook(lambda _m, _i, out: f0_out.append(out))
    try:
        forward = type(model).forward_with_tokens.__wrapped__
        audio, _ = forward(model, torch.LongTensor([[0, *ids, 0]]), ref, 1.0)
    finally:
        if handle is not None:
            handle.remove()
    return audio


def median_voiced_f0(f0) -> object:
    """A differentiable stand-in for the median of voiced F0: the mean log F0 of frames above 50 Hz."""
    import torch

    voiced = f0[f0 > 50]
    return torch.log(voiced).mean() if voiced.numel() else None


@dataclass(frozen=True)
class Learnt:
    offset: np.ndarray
    steps: int
    loss_first: float
    loss_last: float
    seconds: float


def optimise(
    model,
    table: np.ndarray,
    examples: Sequence[Example],
    target: np.ndarray,
    target_f0_hz: float | None,
    *,
    steps: int,
    learning_rate: float,
    seed: int,
    start: np.ndarray | None = None,
    start_step: int = 0,
    on_step: Callable[[int, np.ndarray, float], None] | None = None,
) -> Learnt:
    """Adam on the offset added to every row of ``table`` (see the module docstring); resumable from ``start``."""
    import torch

    rng = np.random.default_rng(seed + start_step)
    offset = torch.zeros(STYLE_DIM, requires_grad=True)
    if start is not None:
        offset.data = torch.from_numpy(np.asarray(start, dtype=np.float32)).clone()
    opt = torch.optim.Adam([offset], lr=learning_rate)
    goal = torch.from_numpy(np.asarray(target, dtype=np.float32))
    log_f0 = math.log(target_f0_hz) if target_f0_hz else None
    rows = torch.from_numpy(np.asarray(table, dtype=np.float32))
    losses: list[float] = []
    t0 = time.perf_counter()
    for step in range(start_step, steps):
        ex = examples[int(rng.integers(len(examples)))]
        ref = (rows[min(len(ex.ids), len(rows)) - 1] + offset)[None]
        f0: list = []
        audio = synthesize_torch(model, ex.ids, ref, f0)
        loss = 1 - torch.dot(torch_embedding(audio), goal)
        if log_f0 is not None and f0 and (predicted := median_voiced_f0(f0[0])) is not None:
            loss = loss + PITCH_WEIGHT * (predicted - log_f0) ** 2
        loss = loss + PULL_WEIGHT * (offset**2).mean() * STYLE_DIM
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step + 1, offset.detach().numpy().copy(), losses[-1])
    return Learnt(
        offset=offset.detach().numpy().copy(),
        steps=steps,
        loss_first=losses[0] if losses else float("nan"),
        loss_last=losses[-1] if losses else float("nan"),
        seconds=time.perf_counter() - t0,
    )
