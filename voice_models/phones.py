"""Model input in the shared IPA phone set: the same phones the aligner used, one vocabulary for every model.

The vocabulary is fixed by the shared set (:data:`tasks.g2p.PHONES` and its modifiers), so a base model and
every bearer's fine-tune agree on token ids without a per-model symbol file. A phone outside the listed set
(a vowel with a diacritic espeak-ng gives for some dialect) is spelt with its symbols, each of which is in it.

Words may carry stress: ``ˈ`` or ``ˌ`` before a syllable's vowel (:func:`stressed`), from espeak-ng's reading
in the dialect; backends that do not model stress drop it (:func:`unstressed`).

coqui-tts tokenizes text one character at a time; each token is written as one private-use character so that
its tokenizer (blank interspersing, padding) works on phone strings unchanged.
"""

from __future__ import annotations

import json

from catalog.storage import Storage
from heirloom.errors import VoiceModelError
from tasks.align import (
    GARBAGE,
    MODIFIERS,
    PHONES,
    SYMBOLS,
    G2PError,
    Lexicon,
    bearer_exceptions,
    is_syllabic,
    latest,
    pronounce,
    stress_marks,
    words_of,
)

WORD_BREAK = " "
VOCABULARY: tuple[str, ...] = (WORD_BREAK, *sorted((PHONES - {GARBAGE}) | set(MODIFIERS)))
_FIRST_PRIVATE = 0xE000
CHARACTERS = "".join(chr(_FIRST_PRIVATE + i) for i in range(len(VOCABULARY)))
PAD, BLANK = chr(0xF000), chr(0xF001)
_CODE = {p: chr(_FIRST_PRIVATE + i) for i, p in enumerate(VOCABULARY)}

Words = tuple[tuple[str, ...], ...]
STRESS = ("ˈ", "ˌ")


def _spell(phone: str) -> str:
    if phone in _CODE:
        return _CODE[phone]
    if phone and set(phone) <= SYMBOLS:
        return "".join(_CODE[c] for c in phone)
    raise VoiceModelError(f"phone {phone!r} is not in the shared IPA phone set; fix the lexicon entry that gives it")


def unstressed(phone: str) -> str:
    return phone.lstrip("".join(STRESS))


def encode(words: Words) -> str:
    """Words of phones as the model's input string (one private-use character per token)."""
    if not any(words):
        raise VoiceModelError("nothing to say: the text has no pronounceable words")
    return _CODE[WORD_BREAK].join("".join(_spell(unstressed(p)) for p in w) for w in words if w)


def stressed(names: list[str], words: Words, dialect: str) -> Words:
    """``words`` (the phones of ``names``) with espeak-ng's stress in ``dialect`` on their syllables.

    A word whose pronunciation has another number of syllables than espeak-ng's (a bearer's exception, an
    aligned variant) keeps its phones unstressed rather than get a mark on the wrong syllable.
    """
    if len(names) != len(words):
        return words
    try:
        marks = stress_marks(names, dialect)
    except G2PError:
        return words
    out = []
    for name, phones in zip(names, words, strict=True):
        wanted = marks.get(name, ())
        syllables = [i for i, p in enumerate(phones) if is_syllabic(p)]
        if len(syllables) != len(wanted):
            out.append(phones)
            continue
        mark = dict(zip(syllables, wanted, strict=True))
        out.append(tuple(mark.get(i, "") + p for i, p in enumerate(phones)))
    return tuple(out)


def segment_words(phones_json: str | None) -> Words:
    """A segment's aligned phones grouped into its words (by where each phone's midpoint falls)."""
    body = json.loads(phones_json or "{}")
    words = body.get("words", [])
    phones = body.get("phones", [])
    grouped = []
    for _, ws, we in words:
        grouped.append(tuple(p for p, ps, pe in phones if ws <= (ps + pe) / 2 < we and p != GARBAGE))
    return tuple(w for w in grouped if w)


def text_words(storage: Storage, text: str, dialect: str, bearer_id: str | None = None) -> Words:
    """Lyrics as the bearer says them: their exceptions, else the dialect's lexicon, else G2P in that dialect."""
    words = words_of(text)
    if not words:
        raise VoiceModelError(f"{text!r} has no words to synthesize")
    lexicon = latest(storage, dialect) or Lexicon(dialect, 0)
    said = pronounce(words, lexicon, bearer_exceptions(storage, bearer_id) if bearer_id else None)
    if said.oov:
        raise VoiceModelError(
            f"no pronunciation for {', '.join(sorted(set(said.oov)))} in {dialect}; add them with "
            f"`heirloom lexicon build --dialect {dialect} --words FILE` or to the bearer's exceptions"
        )
    return stressed(words, tuple(said.pronunciations[w][0] for w in words), dialect)
