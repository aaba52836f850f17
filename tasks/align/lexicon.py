"""Pronunciation lexicons, one per dialect, versioned in the archive, MFA-compatible (``word<TAB>phones``,
one line per variant), plus per-bearer exception lists that override both the lexicon and G2P.

    lexicons/<dialect>/v<N>.dict        the dialect's lexicon, version N (never rewritten)
    lexicons/bearers/<bearer_id>.dict   one bearer's own pronunciations

A version is only ever added: segments record the ``lexicon_version`` (``<dialect>/v<N>``) they were aligned
with, so an alignment can be reproduced after the lexicon grows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from catalog.storage import Storage
from heirloom.errors import HeirloomError
from tasks.align.g2p import GARBAGE, g2p, is_phone

Pronunciations = dict[str, list[tuple[str, ...]]]
_VERSION = re.compile(r"v(\d+)\.dict$")
_DIALECT = re.compile(r"^[a-z]{2,3}(-[a-z0-9]+)*$")


class LexiconError(HeirloomError):
    """A lexicon file is malformed or names phones outside the shared set."""


@dataclass(frozen=True)
class Lexicon:
    dialect: str
    version: int
    entries: Pronunciations = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.dialect}/v{self.version}"


@dataclass(frozen=True)
class Pronounced:
    """A transcript's words with their pronunciations and where each came from."""

    words: tuple[str, ...]
    pronunciations: dict[str, list[tuple[str, ...]]]
    source: dict[str, str]  # word -> "bearer", "lexicon", "g2p" or "oov"
    lexicon_version: str

    @property
    def oov(self) -> list[str]:
        return [w for w in self.words if self.source[w] == "oov"]


def check_dialect(dialect: str) -> str:
    if not _DIALECT.match(dialect):
        raise LexiconError(f"{dialect!r} is not a dialect name; use an espeak-ng voice name such as en-gb-scotland")
    return dialect


def parse_dict(text: str, where: str) -> Pronunciations:
    """Read ``word<TAB>phones`` lines (a variant per line); phones must be in the shared IPA set."""
    out: Pronunciations = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        word, sep, phones = line.partition("\t")
        pron = tuple(phones.split())
        if not sep or not word.strip() or not pron:
            raise LexiconError(f"{where} line {n}: expected 'word<TAB>phone phone ...', got {line!r}")
        unknown = [p for p in pron if not is_phone(p)]
        if unknown:
            raise LexiconError(
                f"{where} line {n}: phone(s) {' '.join(unknown)} are not in the shared IPA set (g2p.PHONES)"
            )
        out.setdefault(word.strip().lower(), [])
        if pron not in out[word.strip().lower()]:
            out[word.strip().lower()].append(pron)
    return out


def format_dict(entries: Pronunciations) -> str:
    return "".join(f"{w}\t{' '.join(p)}\n" for w in sorted(entries) for p in entries[w])


def _key(dialect: str, version: int) -> str:
    return f"lexicons/{dialect}/v{version}.dict"


def latest(storage: Storage, dialect: str) -> Lexicon | None:
    """The newest version of ``dialect``'s lexicon in the archive, or None."""
    versions = [
        int(m.group(1)) for o in storage.list(f"lexicons/{check_dialect(dialect)}/") if (m := _VERSION.search(o.key))
    ]
    if not versions:
        return None
    v = max(versions)
    return Lexicon(dialect, v, parse_dict(storage.read_bytes(_key(dialect, v)).decode(), storage.uri(_key(dialect, v))))


def build(storage: Storage, dialect: str, words: list[str], extra: Pronunciations | None = None) -> tuple[Lexicon, int]:
    """Add ``words`` (by G2P) and ``extra`` (given pronunciations) to the dialect's lexicon.

    Returns the lexicon and how many words were new; a new version is written only when something changed.
    """
    current = latest(storage, dialect) or Lexicon(dialect, 0)
    entries = {w: list(p) for w, p in current.entries.items()}
    added = 0
    for word, prons in (extra or {}).items():
        fresh = [p for p in prons if p not in entries.get(word, [])]
        if fresh:
            added += word not in entries
            entries[word] = fresh + entries.get(word, [])
    new = [w for w in dict.fromkeys(words) if w not in entries]
    for word, prons in g2p(new, dialect).items():
        entries[word] = prons
        added += 1
    if entries == current.entries:
        return current, 0
    lex = Lexicon(dialect, current.version + 1, entries)
    storage.create(_key(dialect, lex.version), format_dict(entries).encode())
    return lex, added


def bearer_exceptions(storage: Storage, bearer_id: str) -> Pronunciations:
    key = f"lexicons/bearers/{bearer_id}.dict"
    return parse_dict(storage.read_bytes(key).decode(), storage.uri(key)) if storage.exists(key) else {}


def pronounce(words: list[str], lexicon: Lexicon, exceptions: Pronunciations | None = None) -> Pronounced:
    """Pronunciations for a transcript's words: the bearer's exceptions, else the lexicon, else G2P, else the
    garbage phone (reported as out of vocabulary, never dropped)."""
    exceptions = exceptions or {}
    prons: dict[str, list[tuple[str, ...]]] = {}
    source: dict[str, str] = {}
    missing = [w for w in dict.fromkeys(words) if w not in exceptions and w not in lexicon.entries]
    guessed = g2p(missing, lexicon.dialect) if missing else {}
    for w in dict.fromkeys(words):
        if w in exceptions:
            prons[w], source[w] = exceptions[w], "bearer"
        elif w in lexicon.entries:
            prons[w], source[w] = lexicon.entries[w], "lexicon"
        elif guessed.get(w, [(GARBAGE,)]) != [(GARBAGE,)]:
            prons[w], source[w] = guessed[w], "g2p"
        else:
            prons[w], source[w] = [(GARBAGE,)], "oov"
    return Pronounced(tuple(words), prons, source, lexicon.name)
