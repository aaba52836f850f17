"""Ingest as plain functions: planning, per-file processing, quarantine, commit and dedupe."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from catalog.manifests import Bearer
from catalog.storage import open_storage
from catalog.tables import Catalog
from tasks.ingest.batch import commit_results, plan_ingest, process_item
from tests.audio_factory import make_collection, write_audio


@pytest.fixture
def archive(tmp_path: Path):
    store = open_storage(str(tmp_path / "archive"))
    cat = Catalog(store)
    cat.init()
    cat.append("bearers", [Bearer(bearer_id="b-01")])
    return store, cat


def run_all(source_dir: Path, archive, collection: str = "c1"):
    store, cat = archive
    source = open_storage(str(source_dir))
    items = plan_ingest(source, collection, {"b-01"})
    results = [process_item(i, source=source, archive=store, collection=collection) for i in items]
    return commit_results(cat, results)


def test_every_file_gets_its_outcome(tmp_path: Path, archive) -> None:
    expected = make_collection(tmp_path / "in", good=6)
    results = run_all(tmp_path / "in", archive)
    assert {r.file: r.outcome for r in results} == expected
    reasons = {r.file: r.reason for r in results}
    assert "empty file" in reasons["bad/empty.wav"]
    assert "truncated" in reasons["bad/truncated.wav"]
    assert "NaN" in reasons["bad/nan.wav"]
    assert "sample rate" in reasons["bad/absurd-rate.wav"]
    assert "not a readable audio file" in reasons["bad/text.wav"]
    assert "no row for orphan.wav" in reasons["orphan.wav"]
    assert "unknown bearer 'b-nobody'" in reasons["stranger.wav"]
    assert "not in the collection" in reasons["gone.wav"]
    assert "outside the collection" in reasons["../outside.wav"]


def test_originals_are_exact_copies_at_their_hash(tmp_path: Path, archive) -> None:
    make_collection(tmp_path / "in", good=6, broken=False)
    store, cat = archive
    run_all(tmp_path / "in", archive)
    rows = cat.read("recordings").to_pylist()
    assert len(rows) == 6
    for row in rows:
        src = Path(row["source_uri"]).read_bytes()
        orig = Path(row["original_uri"]).read_bytes()
        assert orig == src and hashlib.sha256(orig).hexdigest() == row["recording_id"]
        rid = row["recording_id"]
        assert row["original_uri"].endswith(f"originals/{rid[:2]}/{rid}.{Path(row['source_uri']).suffix[1:]}")
    types = {e["type"] for e in cat.read("events").to_pylist()}
    assert {"ingestion", "message digest calculation", "validation"} <= types


def test_quarantine_keeps_bytes_and_a_reason(tmp_path: Path, archive) -> None:
    make_collection(tmp_path / "in", good=1)
    store, _ = archive
    run_all(tmp_path / "in", archive)
    qdir = Path(store.uri("quarantine/c1"))
    assert (qdir / "bad/text.wav").read_text() == "not audio at all\n"
    note = json.loads((qdir / "bad/text.wav.reason.json").read_text())
    assert note["bytes_kept"] and "not a readable audio file" in note["reason"]
    assert json.loads((qdir / "gone.wav.reason.json").read_text())["bytes_kept"] is False
    unsafe = list((qdir / "_unsafe").iterdir())
    assert [p.name for p in unsafe] == ["..%2Foutside.wav.reason.json"]
    assert not (tmp_path / "outside.wav").exists()


def test_source_files_are_never_changed(tmp_path: Path, archive) -> None:
    make_collection(tmp_path / "in", good=3)
    before = {p: p.read_bytes() for p in (tmp_path / "in").rglob("*") if p.is_file()}
    run_all(tmp_path / "in", archive)
    assert {p: p.read_bytes() for p in (tmp_path / "in").rglob("*") if p.is_file()} == before


def test_duplicates_within_and_across_runs(tmp_path: Path, archive) -> None:
    src = tmp_path / "in"
    write_audio(src / "a.wav", seed=1)
    (src / "copy-of-a.wav").write_bytes((src / "a.wav").read_bytes())
    (src / "manifest.csv").write_text("file,bearer_id\na.wav,b-01\ncopy-of-a.wav,b-01\n")
    first = {r.file: r for r in run_all(src, archive)}
    assert first["a.wav"].outcome == "ingested"
    assert first["copy-of-a.wav"].outcome == "duplicate"
    assert first["copy-of-a.wav"].duplicate_of == first["a.wav"].recording.recording_id
    again = {r.file: r for r in run_all(src, archive)}
    assert again["a.wav"].outcome == "duplicate" and "same file" in again["a.wav"].reason
    _, cat = archive
    assert cat.read("recordings").num_rows == 1


def test_manifest_problems_quarantine_everything(tmp_path: Path, archive) -> None:
    src = tmp_path / "in"
    write_audio(src / "a.wav")
    (src / "manifest.csv").write_text("wrong,header\n")
    results = run_all(src, archive)
    assert [(r.file, r.outcome) for r in results] == [("a.wav", "quarantined")]
    assert "malformed manifest" in results[0].reason
    (src / "manifest.csv").unlink()
    assert "no manifest.csv" in run_all(src, archive)[0].reason


def test_transcript_file_is_read(tmp_path: Path, archive) -> None:
    src = tmp_path / "in"
    write_audio(src / "a.wav")
    (src / "a.txt").write_text("the water is wide\n")
    (src / "manifest.csv").write_text("file,bearer_id,transcript_file\na.wav,b-01,a.txt\n")
    results = run_all(src, archive)
    assert [r.outcome for r in results] == ["ingested"]
    assert archive[1].read("recordings").to_pylist()[0]["transcript"] == "the water is wide"


def test_a_damaged_existing_original_is_not_trusted(tmp_path: Path, archive) -> None:
    src = tmp_path / "in"
    write_audio(src / "a.wav")
    (src / "manifest.csv").write_text("file,bearer_id\na.wav,b-01\n")
    sha = hashlib.sha256((src / "a.wav").read_bytes()).hexdigest()
    store, _ = archive
    store.create(f"originals/{sha[:2]}/{sha}.wav", b"rotten bytes from an earlier disaster")
    result = run_all(src, archive)[0]
    assert result.outcome == "quarantined" and "restore it from a replica" in result.reason
