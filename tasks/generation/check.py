"""The check every clip passes before it may be served: is the whole text there, once, and audible?

Speech that drops or repeats words is the commonest fault of synthetic voices, so the check compares what
was said with what was asked. Always: the voice's share of the clip (silero-vad) and its speaking rate
(seconds per word: a dropped phrase makes it fast, a repeated or babbled one slow). Where an ASR exists for
the language, handed in as ``transcribe``: its word error rate against the text, allowed up to what the
same ASR gave the model's own held-out sentences plus a margin. With no such baseline the figure is kept
but not gated, since an absolute limit would refuse good speech from a weak ASR: pocketsphinx (word loop over
the text's words, used for English only where Whisper is not installed) read plainly intelligible espeak-ng
sentences in en-us, en-gb-scotland and en-029 at WER 0.38-0.75.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tasks.align import comparable, words_of
from tasks.prepare import speech_regions

Transcribe = Callable[[np.ndarray, int, list[str]], str]  # (audio, rate, vocabulary) -> words heard


@dataclass(frozen=True)
class CheckLimits:
    """Documented limits (README, "Exhibits"): a clip outside any is generated again, then failed."""

    min_voice_share: float = 0.35
    min_s_per_word: float = 0.15
    max_s_per_word: float = 1.6
    wer_margin: float = 0.2
    wer_floor: float = 0.25


DEFAULT_LIMITS = CheckLimits()


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    figures: dict[str, float | None]
    problems: tuple[str, ...] = field(default=())


def _edit_distance(ref: list[str], hyp: list[str]) -> int:
    import kaldialign

    return int(kaldialign.edit_distance(ref, hyp)["total"])


def check_clip(
    audio: np.ndarray,
    rate: int,
    text: str,
    *,
    transcribe: Transcribe | None = None,
    model_wer: float | None = None,
    limits: CheckLimits = DEFAULT_LIMITS,
) -> CheckResult:
    """Measure the clip against ``text`` and the limits; every problem found is listed."""
    words = words_of(text)
    seconds = len(audio) / rate
    voiced = sum(end - start for start, end in speech_regions(audio.astype(np.float32), rate))
    share = voiced / seconds if seconds else 0.0
    per_word = voiced / max(len(words), 1)
    figures: dict[str, float | None] = {
        "seconds": round(seconds, 3),
        "voice_share": round(share, 3),
        "voiced_s_per_word": round(per_word, 3),
        "wer": None,
        "wer_limit": None,
    }
    problems = []
    if share < limits.min_voice_share:
        problems.append(
            f"voice in {share:.0%} of the clip, under {limits.min_voice_share:.0%}: mostly silence or noise"
        )
    if per_word < limits.min_s_per_word:
        problems.append(f"{per_word:.2f} s of voice per word, under {limits.min_s_per_word}: words are missing")
    if per_word > limits.max_s_per_word:
        problems.append(f"{per_word:.2f} s of voice per word, over {limits.max_s_per_word}: words repeat or babble")
    if transcribe is not None and words:
        # both sides spelt alike: Whisper writes "harbor" and "40" for a text's "harbour" and "forty"
        heard = comparable(words_of(transcribe(audio, rate, sorted(set(words)))))
        wer = _edit_distance(comparable(words), heard) / len(words)
        limit = None if model_wer is None else max(limits.wer_floor, model_wer + limits.wer_margin)
        figures["wer"], figures["wer_limit"] = round(wer, 3), None if limit is None else round(limit, 3)
        if limit is not None and wer > limit:
            problems.append(f"word error rate {wer:.2f} against the text, over {limit:.2f}; heard: {' '.join(heard)!r}")
    return CheckResult(not problems, figures, tuple(problems))
