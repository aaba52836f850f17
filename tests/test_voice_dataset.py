"""The voice-model training set: only gate-passing, unflagged, consented segments enter, every other one is
listed with its reason, and the manifest hash is stable."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from catalog.manifests import Derivative, Segment
from catalog.storage import open_storage
from catalog.tables import Catalog
from tasks.consent.records import grant
from tests.consent_factory import add_bearer, add_recording
from voice_models.dataset import build_dataset, store_manifest

PHONES = json.dumps(
    {
        "words": [["the", 1.0, 1.2], ["water", 1.2, 1.7]],
        "phones": [
            ["ð", 1.0, 1.1],
            ["ə", 1.1, 1.2],
            ["w", 1.2, 1.4],
            ["ɔː", 1.4, 1.5],
            ["t", 1.5, 1.6],
            ["ɚ", 1.6, 1.7],
        ],
    }
)


def derivative(rid: str, gate: str) -> Derivative:
    reasons = () if gate == "pass" else ("bandwidth 3400 Hz (< 4000 Hz)",)
    return Derivative(rid, "a" * 64, f"working/{rid}/x.flac", 32000, 10.0, gate, "{}", gate_reasons=reasons)  # type: ignore[arg-type]


def segment(rid: str, n: int, flags: tuple[str, ...] = ()) -> Segment:
    return Segment(
        f"seg-{rid[:8]}-{n}",
        rid,
        1.0 + 3 * n,
        3.5 + 3 * n,
        "the water is wide",
        PHONES,
        "en-us",
        "en-us/v1",
        -300.0,
        flags,
    )


@pytest.fixture()
def archive(tmp_path: Path) -> tuple[Catalog, object, dict[str, str]]:
    store = open_storage(str(tmp_path / "archive"))
    cat = Catalog(store)
    add_bearer(cat, "b-01")
    add_bearer(cat, "b-02")
    rec = {
        "ok": add_recording(cat, store, "b-01"),
        "excluded": add_recording(cat, store, "b-01"),
        "secret": add_recording(cat, store, "b-01", labels=("tk_secret_sacred",)),
        "review": add_recording(cat, store, "b-01"),
        "unprepared": add_recording(cat, store, "b-01"),
        "silent_bearer": add_recording(cat, store, "b-02"),
    }
    cat.append("derivatives", [derivative(rec[k], "pass") for k in ("ok", "excluded", "secret", "silent_bearer")])
    cat.append("derivatives", [derivative(rec["review"], "review")])
    segs = [segment(rid, 0) for rid in rec.values()] + [segment(rec["ok"], 1, ("oov:qxz",)), segment(rec["ok"], 2)]
    segs.append(replace(segment(rec["ok"], 3), phones="{}"))
    cat.append("segments", segs)
    grant(
        cat,
        store,
        bearer_id="b-01",
        grantor_type="self",
        grantor_id="b-01",
        scopes=["preserve", "model_training", "voice_synthesis"],
        excluded_recordings=[rec["excluded"]],
    )
    return cat, store, rec


def test_only_eligible_segments_enter_and_the_rest_say_why(archive) -> None:
    cat, _, rec = archive
    ds = build_dataset(cat, "b-01")
    assert {i.segment_id for i in ds.items} == {f"seg-{rec['ok'][:8]}-0", f"seg-{rec['ok'][:8]}-2"}
    reasons = {left.recording_id + "/" + left.segment_id[-1]: left.reason for left in ds.left_out}
    assert "excluded by consent" in reasons[rec["excluded"] + "/0"]
    assert "label tk_secret_sacred forbids train_model" in reasons[rec["secret"] + "/0"]
    assert reasons[rec["review"] + "/0"] == "working copy gate is review, not pass"
    assert reasons[rec["unprepared"] + "/0"] == "working copy gate is missing, not pass"
    assert reasons[rec["ok"] + "/1"] == "alignment flagged for review: oov:qxz"
    assert reasons[rec["ok"] + "/3"] == "no aligned phones"
    assert ds.consent_ids and ds.seconds == pytest.approx(5.0)


def test_a_bearer_without_consent_gets_an_empty_dataset(archive) -> None:
    cat, _, _ = archive
    ds = build_dataset(cat, "b-02")
    assert not ds.items and all(left.reason.startswith("consent or protocol") for left in ds.left_out)


def test_the_manifest_is_canonical_and_stored_once(archive) -> None:
    cat, store, _ = archive
    first, again = build_dataset(cat, "b-01"), build_dataset(cat, "b-01")
    assert first.manifest() == again.manifest() and first.sha256 == again.sha256
    stored = store_manifest(store, first)
    assert store_manifest(store, again) == stored and stored["segments"] == 2
    assert store.read_bytes(store.key_of(stored["uri"])) == first.manifest()
