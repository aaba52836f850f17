"""From an approved text to a finished clip's samples: speak it, check it, set its loudness, mark it.

The voice is a callable (``Synthesizer``) handed in by the caller, since voices live in ``voice_models``,
above this layer. Long texts are spoken a sentence at a time and joined with pauses like a speaker's
(a sentence's model input stays well under any model's phone limit); the loudness is measured on the voice
(pyloudnorm, through the prepare stage) and set to the exhibit's target with the true peak at most -1 dBTP;
the watermark carries the clip's payload under the site key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soxr

from heirloom.errors import GenerationError, WatermarkError
from tasks.prepare import MAX_TRUE_PEAK_DBTP, plan_gain, speech_loudness, true_peak_dbtp
from tasks.watermark import MIN_SECONDS, WatermarkKey, embed

Synthesizer = Callable[[str, int], tuple[np.ndarray, int]]  # (text, seed) -> (mono float audio, rate)
DELIVERY_RATE_HZ = 48_000
SENTENCE_PAUSE_S = 0.45
CLAUSE_PAUSE_S = 0.2
MAX_CHUNK_CHARS = 220
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_CLAUSE_END = re.compile(r"(?<=[,])\s+")


@dataclass(frozen=True)
class Rendered:
    audio: np.ndarray
    rate: int
    loudness_lufs: float
    true_peak_dbtp: float
    gain_capped: bool
    seconds: float


def split_text(text: str, max_chars: int = MAX_CHUNK_CHARS) -> list[tuple[str, float]]:
    """The text as (piece, pause after it) pairs: sentences, and clauses of sentences longer than ``max_chars``.

    >>> split_text("The water is wide. I cannot get over!")
    [('The water is wide.', 0.45), ('I cannot get over!', 0.0)]
    """
    pieces: list[tuple[str, float]] = []
    for sentence in (s for s in _SENTENCE_END.split(text.strip()) if s):
        if len(sentence) <= max_chars:
            pieces.append((sentence, SENTENCE_PAUSE_S))
            continue
        clauses = [c for c in _CLAUSE_END.split(sentence) if c]
        pieces += [(c, CLAUSE_PAUSE_S) for c in clauses[:-1]] + [(clauses[-1], SENTENCE_PAUSE_S)]
    if not pieces:
        raise GenerationError("the text has nothing to say")
    return pieces[:-1] + [(pieces[-1][0], 0.0)]


def speak(voice: Synthesizer, text: str, *, seed: int = 0) -> tuple[np.ndarray, int]:
    """The whole text in the voice, its pieces joined by pauses, at the voice's own rate."""
    parts: list[np.ndarray] = []
    rate = 0
    for piece, pause_s in split_text(text):
        audio, sr = voice(piece, seed)
        if rate and sr != rate:
            raise GenerationError(f"the voice changed rate mid-text ({rate} -> {sr} Hz)")
        rate = sr
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        parts += [audio, np.zeros(int(pause_s * sr), dtype=np.float32)]
    return np.concatenate(parts), rate


def finish(audio: np.ndarray, rate: int, *, payload: bytes, key: WatermarkKey, target_lufs: float) -> Rendered:
    """Resample to the delivery rate, set the loudness, embed the watermark; refuse what cannot carry it."""
    x = soxr.resample(audio.astype(np.float32), rate, DELIVERY_RATE_HZ) if rate != DELIVERY_RATE_HZ else audio
    x = x.astype(np.float32)
    seconds = len(x) / DELIVERY_RATE_HZ
    if seconds < MIN_SECONDS:
        raise GenerationError(
            f"the clip is {seconds:.1f} s, shorter than the {MIN_SECONDS:.1f} s a watermark needs; "
            "request the line together with the next one"
        )
    plan = plan_gain(
        speech_loudness([x], DELIVERY_RATE_HZ), true_peak_dbtp(x, DELIVERY_RATE_HZ), target_lufs=target_lufs
    )
    x = x * np.float32(10 ** (plan.gain_db / 20))
    try:
        marked = embed(x, DELIVERY_RATE_HZ, payload, key)
    except WatermarkError as e:
        raise GenerationError(f"the clip cannot carry its watermark: {e}") from e
    peak = true_peak_dbtp(marked, DELIVERY_RATE_HZ)
    if peak > MAX_TRUE_PEAK_DBTP:  # the mark's few decibels per cell can lift a peak over the limit
        marked = marked * np.float32(10 ** ((MAX_TRUE_PEAK_DBTP - peak) / 20))
        peak = MAX_TRUE_PEAK_DBTP
    return Rendered(
        audio=marked.astype(np.float32),
        rate=DELIVERY_RATE_HZ,
        loudness_lufs=round(speech_loudness([marked], DELIVERY_RATE_HZ), 2),
        true_peak_dbtp=round(peak, 2),
        gain_capped=plan.capped,
        seconds=round(seconds, 3),
    )
