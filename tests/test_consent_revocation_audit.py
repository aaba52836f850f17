"""Consent records, revocation carried out end to end (rows and objects gone, old versions too), erasure,
and the audit catching what is wrong."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from catalog.tables import Catalog
from heirloom.errors import ConsentError
from tasks.consent.audit import run_audit
from tasks.consent.audit_html import render_audit_html
from tasks.consent.people import write_person
from tasks.consent.records import consent_records, grant, revoke_scopes
from tasks.consent.revocation import carry_out, erase
from tasks.fixity import check_fixity
from tasks.provenance import keygen
from tests.consent_factory import add_bearer, add_clip, add_exhibit, add_model, add_recording

FULL = ["preserve", "model_training", "voice_synthesis", "exhibit_generation", "public_access"]


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def archive(request: pytest.FixtureRequest, tmp_path: Path):
    uri = str(tmp_path / "archive") if request.param == "local" else request.getfixturevalue("s3_env") + "/arch"
    cat = Catalog.open(uri)
    cat.init()
    return cat, cat.storage


def _world(cat, store):
    add_bearer(cat, "b-1")
    write_person(store, "b-1", {"name": "A. Singer", "contact": "c/o the community hall"})
    rec = add_recording(cat, store, "b-1")
    consent = grant(
        cat, store, bearer_id="b-1", grantor_type="self", grantor_id="b-1", scopes=FULL, credit_line="Sung by A."
    )
    model = add_model(cat, store, "b-1", consent.consent_id, [rec])
    add_exhibit(cat)
    clip = add_clip(cat, store, model.model_id)
    check_fixity(cat, store)
    return rec, consent, model, clip


def _grep_storage(store, needle: str) -> list[str]:
    hits = []
    for obj in store.list():
        if needle.encode() in store.read_bytes(obj.key):
            hits.append(obj.key)
    return hits


def test_grant_chains_and_supersedes(archive) -> None:
    cat, store = archive
    add_bearer(cat, "b-1")
    first = grant(cat, store, bearer_id="b-1", grantor_type="self", grantor_id="b-1", scopes=["preserve"])
    second = grant(cat, store, bearer_id="b-1", grantor_type="self", grantor_id="b-1", scopes=["preserve", "research"])
    assert second.supersedes_id == first.consent_id and second.previous_sha256 == first.record_sha256
    assert [r.consent_id for r in consent_records(cat, "b-1")] == [first.consent_id, second.consent_id]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(bearer_id="b-nobody", grantor_type="self", grantor_id="b-nobody", scopes=["preserve"]), "not registered"),
        (dict(bearer_id="b-1", grantor_type="self", grantor_id="b-1", scopes=["fly"]), "unknown scope"),
        (dict(bearer_id="b-1", grantor_type="self", grantor_id="b-1", scopes=[]), "at least one"),
        (dict(bearer_id="b-1", grantor_type="self", grantor_id="b-2", scopes=["preserve"]), "self grant"),
        (dict(bearer_id="b-dead", grantor_type="family", grantor_id="fam", scopes=["preserve"]), "custodian"),
        (dict(bearer_id="b-dead", grantor_type="self", grantor_id="b-dead", scopes=["preserve"]), "custodian"),
        (
            dict(bearer_id="b-1", grantor_type="family", grantor_id="fam", scopes=["preserve"]),
            "cannot grant for a living",
        ),
        (dict(bearer_id="b-1", grantor_type="legal_guardian", grantor_id="g", scopes=["preserve"]), "needs evidence"),
    ],
)
def test_bad_grants_are_refused(archive, kwargs, message) -> None:
    cat, store = archive
    add_bearer(cat, "b-1")
    add_bearer(cat, "b-dead", status="deceased")
    with pytest.raises(ConsentError, match=message):
        grant(cat, store, **kwargs)


def test_revocation_removes_models_clips_and_every_trace(archive) -> None:
    cat, store = archive
    rec, consent, model, clip = _world(cat, store)
    assert run_audit(cat, store).ok, run_audit(cat, store).to_dict()["findings"]

    report = carry_out(cat, store, "b-1", ["voice_synthesis"], "withdrawn at the family's request")
    assert report.models_removed == (model.model_id,) and report.clips_removed == (clip.clip_id,)
    assert set(report.tables_purged) == {"models", "clips"}
    assert cat.read("models").num_rows == 0 and cat.read("clips").num_rows == 0
    for uri in (model.artifact_uri, model.model_card_uri, clip.uri):
        assert not store.exists(store.key_of(uri))
    assert store.exists(store.key_of(cat.read("recordings").to_pylist()[0]["original_uri"]))  # originals stay
    for needle in (model.model_id, clip.clip_id):
        leftovers = [k for k in _grep_storage(store, needle) if k.startswith(("catalog/models", "catalog/clips"))]
        assert leftovers == [], f"{needle} still in {leftovers}"
    for version in range(cat.table("models").version() + 1):
        try:
            old = cat.read("models", version=version)
        except Exception:
            continue  # purged history cannot be loaded, which is the point
        assert model.model_id not in old.column("model_id").to_pylist()

    head = consent_records(cat, "b-1")[-1]
    assert "voice_synthesis" not in head.scopes and head.supersedes_id == consent.consent_id
    events = {e["type"] for e in cat.read("events").to_pylist()}
    assert {"deletion", "consent revocation"} <= events
    doc = run_audit(cat, store).to_dict()
    assert doc["ok"], doc["findings"]

    again = carry_out(cat, store, "b-1", ["voice_synthesis"], "re-run after a crash")
    assert again.new_consent_ids == () and again.models_removed == ()


def test_a_crash_mid_revocation_is_finished_by_a_rerun(archive) -> None:
    cat, store = archive
    _, _, model, clip = _world(cat, store)
    revoke_scopes(cat, "b-1", ["exhibit_generation"], "crash after the record was written")
    doc = run_audit(cat, store).to_dict()
    assert any(f["check"] == "clip_lineage" for f in doc["findings"])
    report = carry_out(cat, store, "b-1", ["exhibit_generation"], "re-run")
    assert report.clips_removed == (clip.clip_id,) and report.models_removed == ()
    assert cat.read("models").num_rows == 1
    assert run_audit(cat, store).ok


def test_tampered_consent_record_is_caught(tmp_path: Path) -> None:
    cat = Catalog.open(str(tmp_path / "archive"))
    store = cat.storage
    _world(cat, store)
    row = cat.read("consents").to_pylist()[0]
    cat.update("consents", f"consent_id = '{row['consent_id']}'", {"scopes": "array['preserve', 'commercial']"})
    doc = run_audit(cat, store).to_dict()
    chain = [f for f in doc["findings"] if f["check"] == "consent_chain"]
    assert chain and "altered after writing" in chain[0]["message"] and chain[0]["rows"] == ["b-1"]
    assert doc["summary"][0] == {"check": "consent_chain", "items_checked": 1, "findings": len(chain), "status": "fail"}


def test_audit_findings_name_their_rows(tmp_path: Path) -> None:
    cat = Catalog.open(str(tmp_path / "archive"))
    store = cat.storage
    rec, consent, model, _ = _world(cat, store)
    sacred = add_recording(cat, store, "b-1", labels=("tk_secret_sacred",))
    early = add_model(
        cat,
        store,
        "b-1",
        consent.consent_id,
        [rec, sacred],
        version=2,
        created_at=consent.recorded_at - timedelta(days=3),
    )
    add_bearer(cat, "b-dead", status="deceased")
    evidence = tmp_path / "letter.pdf"
    evidence.write_bytes(b"%PDF signed by the family")
    dead = grant(
        cat,
        store,
        bearer_id="b-dead",
        grantor_type="family",
        grantor_id="fam-1",
        scopes=["preserve"],
        evidence=evidence,
    )
    store.put(f"consent-evidence/b-dead/{dead.evidence_sha256}.pdf", b"swapped")
    store.delete(store.key_of(cat.read("recordings").to_pylist()[0]["original_uri"]))
    check_fixity(cat, store)

    doc = run_audit(cat, store).to_dict()
    by_check = {}
    for f in doc["findings"]:
        by_check.setdefault(f["check"], []).append(f)
    assert early.model_id in by_check["model_consent_at_training"][0]["rows"]
    assert any(sacred in f["rows"] and "tk_secret_sacred" in f["message"] for f in by_check["training_manifests"])
    assert any(dead.consent_id in f["rows"] for f in by_check["deceased_evidence"])
    assert any("failed its last fixity check" in f["message"] for f in by_check["fixity_current"])
    html = render_audit_html(doc, archive=store.root_uri)
    for s in doc["summary"]:
        assert f"<td>{s['check']}</td><td>{s['items_checked']}</td><td>{s['findings']}</td>" in html
    assert "<table>" in html and early.model_id in html


def test_erase_removes_person_and_derived_data(archive) -> None:
    cat, store = archive
    _, _, model, clip = _world(cat, store)
    store.put("working/x/y.flac", b"derived")
    report = erase(cat, store, "b-1", "erasure request #17")
    assert not store.exists("people/b-1.json")
    assert report.models_removed == (model.model_id,) and report.clips_removed == (clip.clip_id,)
    assert consent_records(cat, "b-1")[-1].scopes == ("preserve",)
    erasure = [e for e in cat.read("events").to_pylist() if e["type"] == "erasure"]
    assert erasure and erasure[0]["object_ids"] == ["b-1"] and "A. Singer" not in (erasure[0]["detail"] or "")
    assert _grep_storage(store, "A. Singer") == []
    assert run_audit(cat, store).ok


def test_the_audit_checks_each_clips_file_approvals_credentials_and_watermark(tmp_path: Path) -> None:
    from dataclasses import replace

    from tasks.watermark import WatermarkKey
    from tests.consent_factory import TEST_KEY, test_identity

    cat = Catalog.open(str(tmp_path / "archive"))
    cat.init()
    store = cat.storage
    _, _, model, clip = _world(cat, store)
    root = test_identity().root_pem
    report = run_audit(cat, store, watermark_key=TEST_KEY, trust_root_pem=root)
    assert report.ok and report.checked["clip_provenance"] == 1 and not report.not_checked, report.to_dict()
    assert len(run_audit(cat, store).not_checked) == 2  # without key and root it says what it could not check

    wrong_key = run_audit(cat, store, watermark_key=WatermarkKey(secret=bytes(32)), trust_root_pem=root)
    assert [f.check for f in wrong_key.findings] == ["clip_provenance"]
    assert "is not found in the stored file" in wrong_key.findings[0].message
    stranger = keygen(tmp_path / "stranger").root_pem
    assert any("Valid" in f.message for f in run_audit(cat, store, trust_root_pem=stranger).findings)

    orphan = replace(add_clip(cat, store, model.model_id), request_id=None)
    cat.replace("clips", f"clip_id = '{orphan.clip_id}'", [orphan])
    store.put(store.key_of(clip.uri), b"RIFF" + bytes(100))
    found = {f.rows[0]: f.message for f in run_audit(cat, store, watermark_key=TEST_KEY, trust_root_pem=root).findings}
    assert "does not match its SHA-256" in found[clip.clip_id]
    assert "no approved request" in found[orphan.clip_id]
