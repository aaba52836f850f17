"""The training set of one bearer's voice model: which aligned segments may teach a model their voice.

A segment enters only if all of these hold, and every segment left out is listed with its reason:
- its recording's newest working copy passed the quality gate (``review`` and ``fail`` stay out);
- its alignment carries no flag (out-of-vocabulary words, phone-duration outliers, a low score);
- ``decide("train_model", ...)`` allows it at the moment of building, for that recording and its TK/BC labels
  (so excluded recordings, restricted and secret/sacred material never enter).

The manifest (segment ids and a hash of each segment's content) is canonical JSON; its SHA-256 is what a model
version records as its dataset hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from catalog.manifests import Segment, utc_now
from catalog.storage import Storage
from catalog.tables import Catalog, latest_derivatives
from policies.decide import Context, Decision, MaterialFacts, Subject, decide
from tasks.consent import bearer_facts, consent_records
from voice_models.phones import segment_words


@dataclass(frozen=True, slots=True)
class Item:
    segment_id: str
    recording_id: str
    start_s: float
    end_s: float
    text: str
    content_sha256: str
    words: tuple[tuple[str, ...], ...] = ()  # the aligned phones, word by word: what the model reads


@dataclass(frozen=True, slots=True)
class Left:
    segment_id: str
    recording_id: str
    reason: str


@dataclass(frozen=True)
class Dataset:
    bearer_id: str
    built_at: datetime
    items: tuple[Item, ...]
    left_out: tuple[Left, ...]
    consent_ids: tuple[str, ...] = field(default=())

    @property
    def seconds(self) -> float:
        return sum(i.end_s - i.start_s for i in self.items)

    def manifest(self) -> bytes:
        """Canonical JSON: the same dataset always gives the same bytes and hash."""
        doc = {
            "bearer_id": self.bearer_id,
            "consent_ids": sorted(self.consent_ids),
            "segments": [asdict(i) for i in sorted(self.items, key=lambda i: i.segment_id)],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.manifest()).hexdigest()


def content_sha256(segment: Segment) -> str:
    body = {k: v for k, v in segment.to_dict().items() if k not in ("created_at", "flags", "kind", "schema_version")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def build_dataset(catalog: Catalog, bearer_id: str, *, at: datetime | None = None) -> Dataset:
    """Every eligible segment of the bearer, and every other one with why it was left out."""
    at = at or utc_now()
    facts = bearer_facts(catalog, bearer_id)
    consents = tuple(consent_records(catalog, bearer_id))
    recordings = {r["recording_id"]: r for r in catalog.read("recordings").to_pylist() if r["bearer_id"] == bearer_id}
    gates = {rid: d["gate"] for rid, d in latest_derivatives(catalog).items()}
    decisions: dict[str, Decision] = {}
    items, left, consent_ids = [], [], set()
    segments = [Segment.from_dict(r) for r in catalog.read("segments").to_pylist() if r["recording_id"] in recordings]
    for s in sorted(segments, key=lambda s: (s.recording_id, s.start_s)):
        rid = s.recording_id
        if rid not in decisions:
            material = MaterialFacts(rid, tuple(recordings[rid]["tk_labels"] or ()))
            decisions[rid] = decide("train_model", Subject(facts, consents, material), Context(at=at))
        decision = decisions[rid]
        words = segment_words(s.phones)
        reason = _reason(gates.get(rid), s, decision) or ("" if words else "no aligned phones")
        if reason:
            left.append(Left(s.segment_id, rid, reason))
            continue
        consent_ids.update(decision.consent_ids)
        items.append(Item(s.segment_id, rid, s.start_s, s.end_s, s.text, content_sha256(s), words))
    return Dataset(bearer_id, at, tuple(items), tuple(left), tuple(sorted(consent_ids)))


def _reason(gate: str | None, segment: Segment, decision: Decision) -> str:
    if not decision.allowed:
        return "consent or protocol: " + "; ".join(decision.reasons)
    if gate != "pass":
        return f"working copy gate is {gate or 'missing'}, not pass"
    if segment.flags:
        return "alignment flagged for review: " + ", ".join(segment.flags)
    return ""


def store_manifest(storage: Storage, dataset: Dataset) -> dict[str, Any]:
    """Write the manifest to ``models/<bearer>/datasets/<sha256>.json`` (content-addressed, written once)."""
    key = f"models/{dataset.bearer_id}/datasets/{dataset.sha256}.json"
    if not storage.exists(key):
        storage.create(key, dataset.manifest())
    return {"uri": storage.uri(key), "sha256": dataset.sha256, "segments": len(dataset.items)}
