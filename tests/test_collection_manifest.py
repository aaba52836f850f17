"""The collection manifest parser: whole-manifest errors, row problems, and a round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heirloom.errors import ManifestError
from tasks.ingest.manifest import ManifestRow, collection_path, decode_manifest, parse_manifest, render_manifest


def test_good_rows_and_optional_columns() -> None:
    text = (
        "file,bearer_id,title,transcript,language,dialect,tk_labels,recorded_at,notes\n"
        "a.wav,b-1,Song,la la,en,en-gb-scotland,TK_Attribution; tk_seasonal ,1974-05,\n"
        'sub/b.flac,b-2,"Title, with comma",,,,,1974,"two\nlines"\n'
    )
    rows, problems = parse_manifest(text, where="m.csv")
    assert problems == []
    assert rows[0].tk_labels == ("tk_attribution", "tk_seasonal")
    assert rows[0].recorded_at == "1974-05"
    assert rows[1].file == "sub/b.flac" and rows[1].title == "Title, with comma" and rows[1].notes == "two\nlines"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("name,bearer\nx,y\n", "no file, bearer_id column"),
        ("file,bearer_id,transcirpt\na.wav,b\n", "unknown column"),
        ("file,bearer_id,file\na,b,c\n", "repeats a column"),
        ('file,bearer_id\n"a.wav,b\n', "not valid CSV"),
    ],
)
def test_malformed_manifest_raises(text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest(text, where="m.csv")


def test_non_utf8_manifest() -> None:
    with pytest.raises(ManifestError, match="not UTF-8"):
        decode_manifest("file,bearer_id\nkäse.wav,b\n".encode("latin-1"), where="m.csv")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("../x.wav,b-1,", "outside the collection"),
        ("/etc/x.wav,b-1,", "relative path"),
        ("x.wav,not an id,", "not a valid id"),
        ("x.wav,b-1,1974-13-45", "not ISO 8601"),
        ("x.wav,b-1,2001,extra", "different number of fields"),
        ("x.wav", "different number of fields"),
    ],
)
def test_row_problems_do_not_stop_the_rest(row: str, reason: str) -> None:
    rows, problems = parse_manifest(f"file,bearer_id,recorded_at\ngood.wav,b-1,\n{row}\n", where="m.csv")
    assert [r.file for r in rows] == ["good.wav"]
    assert len(problems) == 1 and reason in problems[0].reason


def test_duplicate_file_rows_and_both_transcripts() -> None:
    text = "file,bearer_id,transcript,transcript_file\na.wav,b,,\na.wav,b,,\nc.wav,b,hi,c.txt\n"
    rows, problems = parse_manifest(text, where="m.csv")
    assert [r.file for r in rows] == ["a.wav"]
    assert {p.reason.split(": ", 1)[1] for p in problems} == {
        "a.wav is already listed on line 2",
        "give transcript or transcript_file, not both",
    }


def test_collection_path_normalises() -> None:
    assert collection_path("a//b/./c.wav", what="x") == "a/b/c.wav"
    with pytest.raises(ManifestError):
        collection_path("a/../../c.wav", what="x")


_ID = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,10}", fullmatch=True)
_NAME = st.from_regex(r"[a-z0-9]{1,6}(/[a-z0-9]{1,6}){0,2}\.(wav|flac|mp3)", fullmatch=True)
_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"), max_size=30).map(
    lambda s: s.strip() or None
)


@given(
    st.lists(
        st.tuples(
            _NAME,
            _ID,
            _TEXT,
            _TEXT,
            st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), max_size=3, unique=True),
        ),
        max_size=8,
        unique_by=lambda t: t[0],
    )
)
def test_render_then_parse_round_trips(specs) -> None:
    rows = [
        ManifestRow(line=0, file=f, bearer_id=b, title=t, notes=n, tk_labels=tuple(labels))
        for f, b, t, n, labels in specs
    ]
    parsed, problems = parse_manifest(render_manifest(rows), where="m.csv")
    assert problems == []
    assert [r.__class__(**{**{s: getattr(r, s) for s in r.__slots__}, "line": 0}) for r in parsed] == rows
