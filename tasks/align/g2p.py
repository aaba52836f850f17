"""Grapheme-to-phoneme per dialect with espeak-ng's dialect voices, in the shared IPA phone set.

espeak-ng (``--ipa --sep=_``) gives one pronunciation per word as its voice for the dialect says it; stress
marks are dropped (the aligner needs segments, not stress) and a few multi-letter symbols are joined into the
phones of :data:`PHONES`. English function words also get their weak forms as variants, since running speech
uses them far more often than the citation form espeak-ng gives for a word on its own.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from functools import lru_cache

from heirloom.errors import HeirloomError

GARBAGE = "spn"
ENGLISH_VOICES = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
_VOWELS = "aeiouyæɑɐɒɔəɘɚɛɜɝɞɤɪɯɵɶʉʊʌʏøœɨᵻ"
_CONSONANTS = "bcdfhjklmnpqrstvwxzçðŋɟɡɣɦɫɬɭɮɰɱɲɳɴɸɹɺɻɽɾʀʁʂʃʈʋʍʎʐʑʒʔʕʝβθχ"
MODIFIERS = "ːˑʰʲʷ̩̃̚ʼ̪̥̯"
PHONES: frozenset[str] = frozenset(
    [
        *_VOWELS,
        *_CONSONANTS,
        "tʃ",
        "dʒ",
        "ts",
        "dz",
        "ɔɪ",
        "aɪ",
        "aʊ",
        "eɪ",
        "oʊ",
        "əʊ",
        "ɪə",
        "eə",
        "ʊə",
        "ɛə",
        "iə",
        "ɜː",
        "iː",
        "uː",
        "ɑː",
        "ɔː",
        "oː",
        "eː",
        "aː",
        "ɛː",
        "øː",
        "yː",
        "ɪː",
        "ʊː",
        "æː",
        "ɒː",
        "əː",
        "ʌː",
        "ɑɪ",
        "ɐʊ",
        "ʌʊ",
        "ɔʊ",
        "ɛɪ",
        "əɪ",
        "ɑʊ",
        "ɒʊ",
        "ɜʊ",
        "aɪə",
        "aʊə",
        "ɔɪə",
        "eɪə",
        "oʊə",
        "ɑːɹ",
        "ɔːɹ",
        "ɪɹ",
        "ʊɹ",
        "ɛɹ",
        "ɜːɹ",
        "ɚ",
        "ɝ",
        "l̩",
        "n̩",
        "m̩",
        GARBAGE,
    ]
)
SYMBOLS = frozenset(_VOWELS + _CONSONANTS + MODIFIERS)


def is_phone(phone: str) -> bool:
    """A phone of the shared set: a listed one, or IPA letters with length, nasal or other diacritics."""
    return phone in PHONES or (bool(phone) and phone[0] not in MODIFIERS and set(phone) <= SYMBOLS)


# some voices (en-gb-scotland's "passed") write length as an ASCII colon
_STRESS = str.maketrans({"ˈ": None, "ˌ": None, "\u200d": None, "\u0361": None, ":": "ː"})
_UNKNOWN = "?"  # espeak-ng's "??": a sound it has no symbol for
_SWITCH = re.compile(r"\([a-z-]+\)")  # espeak-ng's "(en)...(de)" marks around a word it reads as another language
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*", re.UNICODE)
WEAK_FORMS = {  # citation form -> weak forms, in the en-us/en-gb voices' phones
    "a": ["ə"],
    "an": ["ə n"],
    "and": ["ə n d", "ə n", "n̩"],
    "the": ["ð ə", "ð i"],
    "of": ["ə v", "ə"],
    "to": ["t ə"],
    "for": ["f ə", "f ɚ"],
    "from": ["f ɹ ə m"],
    "at": ["ə t"],
    "as": ["ə z"],
    "can": ["k ə n"],
    "was": ["w ə z"],
    "were": ["w ə", "w ɚ"],
    "have": ["h ə v", "ə v"],
    "has": ["h ə z", "ə z"],
    "had": ["h ə d", "ə d"],
    "you": ["j ə"],
    "your": ["j ə", "j ɚ"],
    "them": ["ð ə m"],
    "but": ["b ə t"],
    "that": ["ð ə t"],
    "some": ["s ə m"],
}


class G2PError(HeirloomError):
    """espeak-ng is missing, or does not know the voice."""


def words_of(text: str) -> list[str]:
    """The words of a transcript, lower-cased (letters and inner apostrophes; digits and punctuation go)."""
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


_SPELLING = ((re.compile(r"our$"), "or"), (re.compile(r"ise$"), "ize"), (re.compile(r"yse$"), "yze"))


def comparable(words: Sequence[str]) -> list[str]:
    """Words as a transcript and a reference are compared: digits spelt out, spelling variants folded."""
    from num2words import num2words

    out = []
    for w in words:
        if w.isdigit():
            out += words_of(num2words(int(w)))
            continue
        for pattern, repl in _SPELLING:
            w = pattern.sub(repl, w)
        out.append(w.replace("'", ""))
    return out


def split_phones(ipa: str) -> tuple[str, ...]:
    """One espeak-ng word (phonemes joined by ``_``) as phones of :data:`PHONES` (unknown ones kept apart;
    what espeak-ng could not name is the garbage phone)."""
    out: list[str] = []
    for chunk in _SWITCH.sub("", ipa).translate(_STRESS).split("_"):
        if not chunk:
            continue
        if _UNKNOWN in chunk:
            out.append(GARBAGE)
            continue
        if chunk in PHONES:
            out.append(chunk)
            continue
        out.extend(_greedy(chunk))
    return tuple(out)


def _greedy(chunk: str) -> list[str]:
    """Longest-match split of a symbol string espeak-ng did not separate, modifiers kept on their base."""
    out, i = [], 0
    while i < len(chunk):
        for size in (3, 2, 1):
            piece = chunk[i : i + size]
            if len(piece) == size and piece in PHONES:
                out.append(piece)
                i += size
                break
        else:
            if chunk[i] in MODIFIERS and out:
                out[-1] += chunk[i]
            else:
                out.append(chunk[i])
            i += 1
    return out


@lru_cache(maxsize=64)
def _check_voice(voice: str) -> None:
    listing = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True, check=False).stdout
    names = {line.split()[1] for line in listing.splitlines()[1:] if len(line.split()) > 1}
    names |= {line.split()[3].split("/")[-1] for line in listing.splitlines()[1:] if len(line.split()) > 3}
    if voice not in names:
        raise G2PError(f"espeak-ng has no voice {voice!r}; `espeak-ng --voices` lists the dialects it knows")


def _espeak(unique: list[str], voice: str) -> list[str]:
    """espeak-ng's ``--sep=_`` IPA of each word, stress marks kept."""
    try:
        _check_voice(voice)
    except FileNotFoundError:
        raise G2PError("espeak-ng is not installed (apt install espeak-ng)") from None
    # one process for all words: each on its own line ends a clause, so espeak-ng prints one line per word
    proc = subprocess.run(
        ["espeak-ng", "-q", "--ipa", "--sep=_", "-v", voice],
        input="\n".join(f"{w}." for w in unique),
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    if len(lines) != len(unique):
        lines = [_one(w, voice) for w in unique]
    return lines


def g2p(words: list[str], voice: str) -> dict[str, list[tuple[str, ...]]]:
    """Pronunciations of ``words`` in espeak-ng's ``voice``: its own, then weak forms for English words.

    A word espeak-ng gives nothing for maps to the garbage phone, so it is reported as out of vocabulary
    and never silently dropped.
    """
    unique = list(dict.fromkeys(w for w in words if w))
    out: dict[str, list[tuple[str, ...]]] = {}
    if not unique:
        return out
    english = voice.startswith("en")
    for word, ipa in zip(unique, _espeak(unique, voice), strict=True):
        phones = split_phones(ipa.replace(" ", "_"))
        prons = [phones] if phones else [(GARBAGE,)]
        if english and word in WEAK_FORMS:
            prons += [tuple(p.split()) for p in WEAK_FORMS[word] if tuple(p.split()) not in prons]
        out[word] = prons
    return out


def is_syllabic(phone: str) -> bool:
    return bool(phone) and (phone[0] in _VOWELS or phone.endswith("\u0329"))


def stress_marks(words: list[str], voice: str) -> dict[str, tuple[str, ...]]:
    """Per word, the stress espeak-ng's ``voice`` puts on each of its syllables in order (``ˈ``, ``ˌ`` or ``""``).

    The aligner needs no stress, but a synthesizer does (unstressed input reads flat and is misheard), so it is
    kept apart from the phones, for placing on a lexicon pronunciation with as many syllables. Function words
    (those with weak forms) are unstressed in running speech and get none.
    """
    unique = list(dict.fromkeys(w for w in words if w))
    out: dict[str, tuple[str, ...]] = {}
    english = voice.startswith("en")
    for word, ipa in zip(unique, _espeak(unique, voice) if unique else [], strict=True):
        marks = []
        for chunk in _SWITCH.sub("", ipa).replace(" ", "_").split("_"):
            mark = chunk[0] if chunk[:1] in ("ˈ", "ˌ") else ""
            rest = split_phones(chunk)
            marks += [mark if i == 0 else "" for i, p in enumerate(rest) if is_syllabic(p)]
        out[word] = tuple("" for _ in marks) if english and word in WEAK_FORMS else tuple(marks)
    return out


def _one(word: str, voice: str) -> str:
    proc = subprocess.run(
        ["espeak-ng", "-q", "--ipa", "--sep=_", "-v", voice, word], capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()
