"""Phones of the shared IPA set (what the aligner used) as Kokoro's input symbols, by a table per phone.

Kokoro's 114-symbol vocabulary is the IPA misaki writes for English (plus some for other languages). A phone of
the shared set is spelt in three ways:
- **exact**: every symbol of it is in the vocabulary (``aɪ``, ``tʃ``, ``ɑː``, ``ʃ``, stress marks);
- **close** (:data:`CLOSE`): the same sound in misaki's spelling (``ɝ`` -> ``ɜɹ``, a syllabic ``n̩`` -> ``ᵊn``,
  dark ``ɫ`` -> ``l``), or a diacritic with no symbol of its own dropped when its base carries the sound
  (aspiration ``ʰ`` is kept, length ``ˑ`` and the unreleased mark go);
- **missing** (:data:`NEAREST`): a sound Kokoro never learnt (Scottish ``ʉ`` and ``ʍ``, Welsh ``ɬ``, a dental
  mark); it is spoken as its nearest neighbour, and counted against the dialect's coverage.

A bearer is refused when fewer than :data:`MIN_COVERAGE` of the phone tokens of their training segments are
exact or close: the voice would speak another dialect, and the error names the missing phones so a lexicon can
be fixed. A single text is held to :data:`MIN_TEXT_COVERAGE`: a short line swings with one word (en-gb-scotland,
2.3% missing over a sample of 1,130 phones, gives 7.5% on "Listen to the old songs of the river, welcome to the
museum", whose ``to`` and ``museum`` have its ``ʉ``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from heirloom.errors import VoiceModelError
from voice_models.kokoro_base import MAX_PHONES, vocabulary
from voice_models.phones import STRESS, Words

MIN_COVERAGE = 0.97
MIN_TEXT_COVERAGE = 0.90
CLOSE: dict[str, str] = {
    "ɝ": "ɜɹ",
    "l̩": "ᵊl",
    "m̩": "ᵊm",
    "n̩": "ᵊn",
    "ɫ": "l",
    "ɦ": "h",
    "ɘ": "ə",
    "ɭ": "l",
    "ɺ": "ɾ",
    "ʀ": "ʁ",
    "ɱ": "m",
    "ʐ": "ʒ",
    "ʑ": "ʒ",
    "ʏ": "ʊ",
}
DROPPED_MODIFIERS = frozenset("ˑ̯̚")  # no sound of their own in Kokoro's symbols: half-length, unreleased, non-syllabic
NEAREST: dict[str, str] = {
    "ʉ": "u",
    "ʍ": "w",
    "ɬ": "l",
    "ɮ": "l",
    "ʕ": "ʔ",
    "ɵ": "ə",
    "ɶ": "æ",
    "ɞ": "ɜ",
    "ʷ": "w",
    "̩": "ə",
    "̪": "",
    "̥": "",
    "ʼ": "",
}
WORD_BREAK = " "


@dataclass(frozen=True)
class Coverage:
    """How much of a set of phone tokens Kokoro can say."""

    tokens: int
    exact: int
    close: int
    missing: dict[str, int]

    @property
    def fraction(self) -> float:
        return (self.exact + self.close) / self.tokens if self.tokens else 1.0

    def to_dict(self) -> dict[str, object]:
        return {
            "tokens": self.tokens,
            "exact": self.exact,
            "close": self.close,
            "missing": dict(sorted(self.missing.items(), key=lambda kv: -kv[1])),
            "coverage": round(self.fraction, 4),
        }


def _spell(phone: str) -> tuple[str, str]:
    """(Kokoro symbols, 'exact' | 'close' | the missing symbol) for one phone of the shared set."""
    vocab = vocabulary()
    stress = "".join(c for c in phone if c in STRESS)
    bare = phone.lstrip("".join(STRESS))
    if bare and all(c in vocab for c in bare):
        return stress + bare, "exact"
    if bare in CLOSE:
        return stress + CLOSE[bare], "close"
    out, kind = [], "exact"
    for c in bare:
        if c in vocab:
            out.append(c)
        elif c in DROPPED_MODIFIERS:
            kind = "close" if kind == "exact" else kind
        elif c in CLOSE:
            out.append(CLOSE[c])
            kind = "close" if kind == "exact" else kind
        else:
            out.append(NEAREST.get(c, ""))
            kind = c
    return stress + "".join(out), kind


def coverage(words_list: Iterable[Words]) -> Coverage:
    exact = close = tokens = 0
    missing: Counter[str] = Counter()
    for words in words_list:
        for word in words:
            for phone in word:
                tokens += 1
                kind = _spell(phone)[1]
                if kind == "exact":
                    exact += 1
                elif kind == "close":
                    close += 1
                else:
                    missing[kind] += 1
    return Coverage(tokens, exact, close, dict(missing))


def check_coverage(cov: Coverage, what: str, minimum: float = MIN_COVERAGE) -> None:
    if cov.fraction < minimum:
        lacking = ", ".join(f"{p} ({n}x)" for p, n in sorted(cov.missing.items(), key=lambda kv: -kv[1]))
        raise VoiceModelError(
            f"{what}: Kokoro can say {cov.fraction:.1%} of its {cov.tokens} phones, under the {minimum:.0%} "
            f"this backend needs; it has no symbol for {lacking}. Use the vits backend with a base trained on this "
            "dialect, or give those words pronunciations without these phones in the bearer's exceptions"
        )


def symbols(words: Words) -> str:
    """The input string for ``words``: Kokoro symbols, words separated by spaces."""
    return WORD_BREAK.join("".join(_spell(p)[0] for p in w) for w in words if w)


def token_ids(text: str) -> list[int]:
    vocab = vocabulary()
    return [vocab[c] for c in text if c in vocab]


def chunks(words: Words, limit: int = MAX_PHONES) -> list[list[int]]:
    """Token ids in pieces of at most ``limit`` symbols, cut between words (Kokoro's ALBERT sees 512 positions).

    Aligned phones carry no punctuation, so a phrase boundary is a word boundary here; pieces are cut as evenly
    as the words allow, so no piece is a stub spoken without context.
    """
    spelt = [token_ids(symbols((w,))) for w in words if w]
    total = sum(len(s) + 1 for s in spelt)
    if not spelt:
        raise VoiceModelError("nothing to say: the text has no pronounceable words")
    pieces = max(1, -(-total // limit))
    target = total / pieces
    out: list[list[int]] = [[]]
    space = vocabulary()[WORD_BREAK]
    for ids in spelt:
        if len(ids) > limit:
            raise VoiceModelError(
                f"a word of {len(ids)} phones is longer than Kokoro's {limit}; check its lexicon entry"
            )
        if out[-1] and (len(out[-1]) + 1 + len(ids) > limit or len(out[-1]) >= target):
            out.append([])
        out[-1] += ([space] if out[-1] else []) + ids
    return out
