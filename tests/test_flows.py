"""Whole flows under one Prefect test harness: ingest and fixity, local and on S3; tasks through .fn()."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.manifests import Bearer
from catalog.storage import open_storage
from catalog.tables import Catalog
from tests.audio_factory import make_collection

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _archive_with_bearer(uri: str) -> Catalog:
    cat = Catalog.open(uri)
    cat.init()
    cat.append("bearers", [Bearer(bearer_id="b-01")])
    return cat


def test_ingest_flow_local(tmp_path: Path) -> None:
    from flows.ingest import ingest

    expected = make_collection(tmp_path / "in", good=5)
    cat = _archive_with_bearer(str(tmp_path / "archive"))
    summary = ingest(source=str(tmp_path / "in"), collection="c1", archive=str(tmp_path / "archive"), batch_size=4)
    assert {f["file"]: f["outcome"] for f in summary["files"]} == expected
    assert summary["counts"] == {"ingested": 5, "duplicate": 0, "quarantined": len(expected) - 5}
    assert cat.read("recordings").num_rows == 5
    run_ids = {e["flow_run_id"] for e in cat.read("events").to_pylist()}
    assert run_ids == {summary["flow_run_id"]} and summary["flow_run_id"]


def test_fixity_flow_finds_damage_and_loss(tmp_path: Path) -> None:
    from flows.fixity import fixity
    from flows.ingest import ingest

    make_collection(tmp_path / "in", good=3, broken=False)
    archive = str(tmp_path / "archive")
    cat = _archive_with_bearer(archive)
    ingest(source=str(tmp_path / "in"), collection="c1", archive=archive)
    assert fixity(archive=archive)["problems"] == []
    rows = cat.read("recordings").to_pylist()
    Path(rows[0]["original_uri"]).write_bytes(b"bit rot")
    Path(rows[1]["original_uri"]).unlink()
    report = fixity(archive=archive)
    assert {(p["recording_id"], p["status"]) for p in report["problems"]} == {
        (rows[0]["recording_id"], "mismatch"),
        (rows[1]["recording_id"], "missing"),
    }
    checks = [e for e in cat.read("events").to_pylist() if e["type"] == "fixity check"]
    assert sum(e["outcome"] == "failure" for e in checks) == 2


@pytest.mark.s3
def test_ingest_flow_s3_source_and_archive(tmp_path: Path, s3_env: str) -> None:
    from flows.fixity import fixity
    from flows.ingest import ingest

    expected = make_collection(tmp_path / "in", good=4)
    incoming = open_storage(f"{s3_env}/incoming/c1")
    for p in sorted((tmp_path / "in").rglob("*")):
        if p.is_file():
            incoming.put(p.relative_to(tmp_path / "in").as_posix(), p.read_bytes())
    archive = f"{s3_env}/archive"
    cat = _archive_with_bearer(archive)
    summary = ingest(source=f"{s3_env}/incoming/c1", collection="c1", archive=archive)
    assert {f["file"]: f["outcome"] for f in summary["files"]} == expected
    rows = cat.read("recordings").to_pylist()
    assert len(rows) == 4 and all(r["original_uri"].startswith(f"{s3_env}/archive/originals/") for r in rows)
    store = open_storage(archive)
    assert store.exists("quarantine/c1/bad/empty.wav.reason.json")
    assert fixity(archive=archive)["problems"] == []
    again = ingest(source=f"{s3_env}/incoming/c1", collection="c1", archive=archive)
    assert again["counts"]["ingested"] == 0 and again["counts"]["duplicate"] == 4


def test_task_logic_through_fn(tmp_path: Path) -> None:
    from flows.ingest import plan, prepare_archive

    make_collection(tmp_path / "in", good=2, broken=False)
    _archive_with_bearer(str(tmp_path / "archive"))
    bearers = prepare_archive.fn(str(tmp_path / "archive"))
    assert bearers == {"b-01"}
    assert [i.file for i in plan.fn(str(tmp_path / "in"), "c1", bearers)] == ["takes/take000.wav", "takes/take001.flac"]


def test_revoke_and_audit_flows_publish_their_results(tmp_path: Path) -> None:
    from prefect.artifacts import Artifact

    from flows.audit import audit
    from flows.consent import revoke
    from tasks.consent.records import grant
    from tests.consent_factory import add_model, add_recording

    archive = str(tmp_path / "archive")
    cat = _archive_with_bearer(archive)
    rid = add_recording(cat, cat.storage, "b-01")
    consent = grant(
        cat,
        cat.storage,
        bearer_id="b-01",
        grantor_type="self",
        grantor_id="b-01",
        scopes=["preserve", "model_training", "voice_synthesis"],
    )
    model = add_model(cat, cat.storage, "b-01", consent.consent_id, [rid])
    doc = audit(archive=archive)
    assert not doc["ok"] and {f["check"] for f in doc["findings"]} == {"fixity_current"}
    artifact = Artifact.get("heirloom-audit")
    assert artifact is not None and "fixity_current" in str(artifact.data)
    report = revoke(bearer_id="b-01", scopes=["model_training"], reason="test", archive=archive)
    assert report["models_removed"] == [model.model_id]


def test_prepare_flow_is_idempotent_and_gates(tmp_path: Path) -> None:
    import hashlib
    import json

    import numpy as np
    import soundfile as sf

    from flows.ingest import ingest
    from flows.prepare import prepare

    src = tmp_path / "in"
    make_collection(src, good=2, broken=False)
    sf.write(str(src / "silent.wav"), np.zeros(16000 * 2, np.float32), 16000)
    (src / "manifest.csv").write_text((src / "manifest.csv").read_text() + "silent.wav,b-01,,,,,,,,\n")
    archive = str(tmp_path / "archive")
    cat = _archive_with_bearer(archive)
    ingest(source=str(src), collection="c1", archive=archive)
    first = prepare(collection="c1", archive=archive)
    assert len(first["prepared"]) == 3 and not first["failed"]
    rows = {r["recording_id"]: r for r in cat.read("derivatives").to_pylist()}
    silent = rows[hashlib.sha256((src / "silent.wav").read_bytes()).hexdigest()]
    assert silent["gate"] == "fail" and "no speech" in silent["gate_reasons"][0]
    store = open_storage(archive)
    for r in rows.values():
        assert store.exists(store.key_of(r["uri"]))
        assert json.loads(r["metrics"])["segments_uri"]
    again = prepare(collection="c1", archive=archive)
    assert again["prepared"] == [] and cat.read("derivatives").num_rows == 3


def test_generate_flow_makes_a_signed_clip_per_queued_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow around generate_text: the site's key and signer loaded once, a voice per bearer (espeak-ng
    stands in for the bearer's active model), and a text whose bearer has no voice failed with the reason."""
    import flows.generate as generate_module
    from heirloom.errors import VoiceModelError
    from tasks.consent import grant
    from tasks.exhibits import add_exhibit, approve, rows_of, submit
    from tasks.generation import Voice
    from tasks.provenance import keygen
    from tasks.watermark import new_key_file
    from tests.test_generation import LINE, espeak_voice

    archive = str(tmp_path / "archive")
    cat = _archive_with_bearer(archive)
    cat.append("bearers", [Bearer(bearer_id="b-02")])
    scopes = ["voice_synthesis", "exhibit_generation"]
    for b in ("b-01", "b-02"):
        grant(cat, cat.storage, bearer_id=b, grantor_type="self", grantor_id=b, scopes=scopes, audiences=["public"])
    exhibit, _ = add_exhibit(cat, "kiosk-1", venue="Hall", audience="public", purpose="education")
    ids = []
    for b in ("b-01", "b-02"):
        (row,) = submit(cat, exhibit, b, [LINE], "flac")
        approve(cat, row.request_id, by="cur-1")
        ids.append(row.request_id)
    new_key_file(tmp_path / "site.key")
    keygen(tmp_path / "identity")
    monkeypatch.setenv("HEIRLOOM_WATERMARK_KEY_FILE", str(tmp_path / "site.key"))
    monkeypatch.setenv("HEIRLOOM_PROVENANCE_DIR", str(tmp_path / "identity"))

    def voices(catalog, storage, bearer_id):
        if bearer_id == "b-02":
            raise VoiceModelError(f"bearer {bearer_id} has no active voice model")
        return Voice(model_id="m-b-01-v1", bearer_id=bearer_id, synthesize=espeak_voice)

    monkeypatch.setattr(generate_module, "load_voice", voices)
    result = generate_module.generate(archive=archive)
    assert result["states"] == {"ready": 1, "failed": 1}
    ready, failed = (rows_of(cat, request_id=i)[0] for i in ids)
    assert ready.state == "ready" and failed.reason == "bearer b-02 has no active voice model"
    (clip,) = cat.read("clips").to_pylist()
    assert clip["clip_id"] == ready.clip_id and clip["manifest_uri"]
