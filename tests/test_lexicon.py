"""Dialect lexicons and G2P: espeak-ng's dialect voices in the shared IPA set, weak forms, versions in the
archive, bearer exceptions over lexicon over G2P, out-of-vocabulary words reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tasks.align.lexicon as lexicon_module
from catalog.storage import open_storage
from tasks.align.g2p import GARBAGE, G2PError, g2p, is_phone, split_phones, words_of
from tasks.align.lexicon import Lexicon, LexiconError, bearer_exceptions, build, latest, parse_dict, pronounce

HEIRLOOM = str(Path(sys.executable).parent / "heirloom")


def test_words_and_phones_are_split_into_the_shared_set() -> None:
    assert words_of("The water's wide, 1974 — I can't!") == ["the", "water's", "wide", "i", "can't"]
    assert split_phones("w_ˈɔː_ɾ_ɚ") == ("w", "ɔː", "ɾ", "ɚ")
    assert split_phones("(en)ð_ə(de)") == ("ð", "ə")
    assert split_phones("ˈaɪ") == ("aɪ",)
    assert split_phones("p_ˈa:_s_t") == ("p", "aː", "s", "t")  # en-gb-scotland writes length as ASCII ':'
    assert split_phones("t̪_a") == ("t̪", "a")  # a dental diacritic stays on its consonant
    assert split_phones("??_a") == (GARBAGE, "a")  # what espeak-ng cannot name is never a phone


def test_dialect_voices_differ_and_weak_forms_are_variants() -> None:
    us = g2p(["water", "and", "cannot"], "en-us")
    scots = g2p(["water", "and", "cannot"], "en-gb-scotland")
    assert us["water"] != scots["water"]
    assert ("ə", "n", "d") in us["and"] and len(us["and"]) > 1
    for prons in (*us.values(), *scots.values()):
        assert all(is_phone(p) for pron in prons for p in pron)
    assert g2p(["wasser"], "de")["wasser"][0][0] == "v"  # any espeak-ng language a collection names
    with pytest.raises(G2PError, match="no voice"):
        g2p(["water"], "en-nowhere")


def test_lexicon_versions_grow_and_never_rewrite(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "archive"))
    lex, added = build(storage, "en-gb-scotland", ["the", "water", "is", "wide"])
    assert lex.name == "en-gb-scotland/v1" and added == 4
    again, added = build(storage, "en-gb-scotland", ["water", "wide"])
    assert again.name == "en-gb-scotland/v1" and added == 0
    more, added = build(storage, "en-gb-scotland", ["ford"], {"salley": [("s", "a", "l", "e")]})
    assert more.name == "en-gb-scotland/v2" and added == 2
    assert latest(storage, "en-gb-scotland").entries["salley"] == [("s", "a", "l", "e")]
    assert parse_dict(storage.read_bytes("lexicons/en-gb-scotland/v1.dict").decode(), "v1") == lex.entries


def test_malformed_lexicons_are_refused_with_the_line() -> None:
    with pytest.raises(LexiconError, match="line 2: expected"):
        parse_dict("water\tw ɔː t ɜ\nwide w aɪ d\n", "x.dict")
    with pytest.raises(LexiconError, match="line 1: phone"):
        parse_dict("water\tw Q t\n", "x.dict")


def test_bearer_beats_lexicon_beats_g2p_and_oov_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = open_storage(str(tmp_path / "archive"))
    lex, _ = build(storage, "en-us", ["water"])
    storage.put("lexicons/bearers/b-1.dict", "wide\tw ɔɪ d\n".encode())
    said = pronounce(["water", "wide", "ford"], lex, bearer_exceptions(storage, "b-1"))
    assert said.source == {"water": "lexicon", "wide": "bearer", "ford": "g2p"}
    assert said.pronunciations["wide"] == [("w", "ɔɪ", "d")] and said.lexicon_version == "en-us/v1"
    monkeypatch.setattr(lexicon_module, "g2p", lambda words, voice: {w: [(GARBAGE,)] for w in words})
    unknown = pronounce(["water", "qxz"], Lexicon("en-us", 1, lex.entries))
    assert unknown.oov == ["qxz"] and unknown.pronunciations["qxz"] == [(GARBAGE,)]


@pytest.mark.slow
def test_cli_build_and_show(tmp_path: Path) -> None:
    env = {**os.environ, "HEIRLOOM_ARCHIVE": str(tmp_path / "archive")}
    (tmp_path / "w.txt").write_text("The water is wide, I cannot get over\n")
    out = subprocess.run(
        [HEIRLOOM, "lexicon", "build", "--dialect", "en-029", "--words", str(tmp_path / "w.txt"), "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(out.stdout) == {"dialect": "en-029", "version": "en-029/v1", "words": 8, "added": 8}
    shown = subprocess.run(
        [HEIRLOOM, "lexicon", "show", "water", "--dialect", "en-029", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(shown.stdout)["words"][0]["source"] == "lexicon"
    bad = subprocess.run(
        [HEIRLOOM, "lexicon", "show", "water", "--dialect", "EN GB"], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 1 and "not a dialect name" in bad.stderr
