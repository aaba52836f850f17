"""The curator's audit: every model, clip and consent checked against the rules, each finding naming rows.

Checks:
- ``consent_chain``: each bearer's consent records match their hashes and link to the record before, and
  each record's hash is the one logged when it was written;
- ``model_consent_at_training``: each model had consent in force when it was trained (the consents table
  read as it was then, by Delta time travel) under the consent record it names;
- ``model_consent_now``: each model still has that consent (else its revocation was not carried out);
- ``clip_lineage``: each clip traces to a model and to consent covering its exhibit's audience and purpose,
  when it was made and still now;
- ``clip_provenance``: each clip's stored file matches its hash, it traces to an approved request, its
  Content Credentials are present and validate (Trusted against the site's root, when given), and its
  watermark is found in the stored file (when the key is given);
- ``training_manifests``: no restricted, secret/sacred or excluded recording is in any training manifest;
- ``deceased_evidence``: every custodian grant for a deceased bearer has stored evidence whose hash matches;
- ``revocations_complete``: nothing a revocation removed is still in a table or in storage;
- ``fixity_current``: every original had a successful fixity check within ``fixity_max_age_days``.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from catalog.manifests import ConsentRecord, utc_now
from catalog.storage import Storage
from catalog.tables import Catalog
from heirloom.errors import StorageError
from policies.consent import chain_breaks
from policies.decide import BearerFacts, Context, Subject, decide
from policies.protocols import load_protocols
from tasks.audio import read_all
from tasks.consent.people import find_evidence
from tasks.consent.records import all_bearer_facts, consent_records
from tasks.fixity import sha256_of
from tasks.provenance import clip_credentials
from tasks.watermark import WatermarkKey, detect

DATASET_MANIFEST = "dataset.json"
CHECKS = (
    "consent_chain",
    "model_consent_at_training",
    "model_consent_now",
    "clip_lineage",
    "clip_provenance",
    "training_manifests",
    "deceased_evidence",
    "revocations_complete",
    "fixity_current",
)


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    message: str
    rows: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuditReport:
    at: datetime
    checked: dict[str, int]
    findings: tuple[Finding, ...] = field(default=())
    not_checked: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        per_check = {c: sum(1 for f in self.findings if f.check == c) for c in CHECKS}
        return {
            "at": self.at.isoformat(),
            "ok": self.ok,
            "summary": [
                {
                    "check": c,
                    "items_checked": self.checked.get(c, 0),
                    "findings": per_check[c],
                    "status": "fail" if per_check[c] else "pass",
                }
                for c in CHECKS
            ],
            "findings": [{"check": f.check, "message": f.message, "rows": list(f.rows)} for f in self.findings],
            "not_checked": list(self.not_checked),
        }


def _check_chain(catalog: Catalog, consents: list[dict]) -> tuple[int, list[Finding]]:
    logged = {}
    for e in catalog.read("events").to_pylist():
        if e["type"] in ("consent grant", "consent revocation") and e["detail"] and len(e["object_ids"]) > 1:
            sha = json.loads(e["detail"]).get("record_sha256")
            if sha:
                logged[e["object_ids"][1]] = sha
    by_bearer: dict[str, list[dict]] = defaultdict(list)
    for row in consents:
        by_bearer[row["bearer_id"]].append(row)
    findings = [
        Finding("consent_chain", p, (bearer,)) for bearer, rows in by_bearer.items() for p in chain_breaks(rows)
    ]
    for row in consents:
        if logged.get(row["consent_id"]) not in (None, row["record_sha256"]):
            findings.append(
                Finding(
                    "consent_chain",
                    f"{row['consent_id']}: hash differs from the one logged when written",
                    (row["consent_id"],),
                )
            )
        if row["consent_id"] not in logged:
            findings.append(
                Finding("consent_chain", f"{row['consent_id']}: no event logged its writing", (row["consent_id"],))
            )
    return len(consents), findings


def _check_models(
    catalog: Catalog, models: list[dict], bearers: dict[str, BearerFacts], now: datetime
) -> tuple[int, list[Finding], list[Finding]]:
    then_findings, now_findings = [], []
    current = consent_records(catalog)
    for m in models:
        bearer = bearers.get(m["bearer_id"], BearerFacts(m["bearer_id"]))
        at = m["created_at"]
        then = [
            r for r in consent_records(catalog, m["bearer_id"], as_of=at + timedelta(seconds=1)) if r.recorded_at <= at
        ]
        d = decide("train_model", Subject(bearer, tuple(then)), Context(at=at))
        if not d.allowed or m["consent_id"] not in d.consent_ids:
            why = "; ".join(d.reasons) if not d.allowed else f"its consent {m['consent_id']} was not the one in force"
            then_findings.append(
                Finding(
                    "model_consent_at_training",
                    f"model {m['model_id']} trained without consent: {why}",
                    (m["model_id"], m["consent_id"]),
                )
            )
        mine = tuple(r for r in current if r.bearer_id == m["bearer_id"])
        d_now = decide("train_model", Subject(bearer, mine), Context(at=now))
        if not d_now.allowed:
            now_findings.append(
                Finding(
                    "model_consent_now",
                    f"model {m['model_id']} ({m['status']}) no longer has consent: {'; '.join(d_now.reasons)}",
                    (m["model_id"],),
                )
            )
    return len(models), then_findings, now_findings


def _check_clips(
    catalog: Catalog, clips: list[dict], models: list[dict], bearers: dict[str, BearerFacts], now: datetime
) -> list[Finding]:
    by_model = {m["model_id"]: m for m in models}
    exhibits = {e["exhibit_id"]: e for e in catalog.read("exhibits").to_pylist()}
    records = consent_records(catalog)
    out = []
    for c in clips:
        model = by_model.get(c["model_id"])
        exhibit = exhibits.get(c["exhibit_id"])
        if model is None:
            out.append(
                Finding(
                    "clip_lineage",
                    f"clip {c['clip_id']} names model {c['model_id']}, which is not in the catalog",
                    (c["clip_id"],),
                )
            )
            continue
        if exhibit is None:
            out.append(
                Finding(
                    "clip_lineage",
                    f"clip {c['clip_id']} names exhibit {c['exhibit_id']}, which is not registered",
                    (c["clip_id"],),
                )
            )
            continue
        bearer = bearers.get(model["bearer_id"], BearerFacts(model["bearer_id"]))
        mine = tuple(r for r in records if r.bearer_id == bearer.bearer_id)
        for when, label in ((c["created_at"], "when it was made"), (now, "now")):
            ctx = Context(at=when, audience=exhibit["audience"], purpose=exhibit["purpose"])
            d = decide("serve_clip", Subject(bearer, mine), ctx)
            if not d.allowed:
                message = (
                    f"clip {c['clip_id']} for exhibit {c['exhibit_id']} lacks consent {label}: {'; '.join(d.reasons)}"
                )
                out.append(Finding("clip_lineage", message, (c["clip_id"], c["model_id"])))
                break
    return out


def _check_clip_files(
    archive: Storage, clips: list[dict], key: WatermarkKey | None, root_pem: bytes | None
) -> list[Finding]:
    """Each ready clip: its stored file is intact, it traces to approvals, its Content Credentials are there
    and validate (Trusted against the site's root when the audit has it), and its watermark is in the file."""
    out = []
    for c in clips:
        rows = (c["clip_id"],)

        def finding(message: str) -> None:
            out.append(Finding("clip_provenance", f"clip {c['clip_id']}: {message}", rows))  # noqa: B023

        try:
            data = archive.read_bytes(archive.key_of(c["uri"]))
        except StorageError as e:
            finding(f"its file cannot be read ({e}); withdraw the clip or restore the file")
            continue
        if hashlib.sha256(data).hexdigest() != c["sha256"]:
            finding("its stored file does not match its SHA-256: it changed after it was made; withdraw it")
            continue
        if not c.get("request_id") or not json.loads(c.get("approvals") or "[]"):
            finding("it traces to no approved request; clips are made only from approved texts")
        fmt = c.get("format")
        if fmt is None:
            finding("its format is not recorded, so its Content Credentials cannot be read")
            continue
        creds = clip_credentials(archive, c, root_pem=root_pem, data=data)
        wanted = ("Trusted",) if root_pem is not None else ("Trusted", "Valid")
        if creds is None:
            finding("it carries no Content Credentials and the archive keeps none for it")
        elif creds.state not in wanted or creds.clip.get("clip_id") != c["clip_id"]:
            finding(f"its Content Credentials read {creds.state} for clip {creds.clip.get('clip_id')!r}")
        if key is not None:
            with tempfile.TemporaryDirectory(prefix="heirloom-audit-") as tmp:
                path = Path(tmp) / f"clip.{fmt}"
                path.write_bytes(data)
                audio, rate = read_all(path)
            found = detect(audio, rate, key)
            if not found.found or found.payload is None or found.payload.hex() != c["watermark_payload"]:
                finding(f"its watermark {c['watermark_payload']} is not found in the stored file ({found.reason})")
    return out


def _check_manifests(
    archive: Storage, models: list[dict], recordings: dict[str, dict], consents: list[ConsentRecord]
) -> list[Finding]:
    protocols = load_protocols()
    never_train = {name for name, rule in protocols.labels.items() if "train_model" in rule.never}
    excluded = {(r.bearer_id, rec) for r in consents for rec in r.excluded_recordings}
    out = []
    for m in models:
        try:
            key = archive.key_of(m["artifact_uri"]).rsplit("/", 1)[0] + "/" + DATASET_MANIFEST
            manifest = json.loads(archive.read_bytes(key))
            sha = sha256_of(archive, key)
        except (StorageError, ValueError) as e:
            out.append(
                Finding(
                    "training_manifests", f"model {m['model_id']}: training manifest unreadable ({e})", (m["model_id"],)
                )
            )
            continue
        if sha != m["dataset_manifest_sha256"]:
            out.append(
                Finding(
                    "training_manifests",
                    f"model {m['model_id']}: manifest hash differs from the registered one",
                    (m["model_id"],),
                )
            )
        for seg in manifest.get("segments", []):
            rid = seg.get("recording_id")
            labels = set((recordings.get(rid) or {}).get("tk_labels") or ())
            bad = sorted(labels & never_train)
            if bad:
                out.append(
                    Finding(
                        "training_manifests",
                        f"model {m['model_id']} trained on {rid} labelled {', '.join(bad)}",
                        (m["model_id"], rid),
                    )
                )
            if (m["bearer_id"], rid) in excluded:
                out.append(
                    Finding(
                        "training_manifests",
                        f"model {m['model_id']} trained on excluded recording {rid}",
                        (m["model_id"], rid),
                    )
                )
    return out


def _check_evidence(archive: Storage, consents: list[ConsentRecord], erased: set[str]) -> tuple[int, list[Finding]]:
    grants = [r for r in consents if r.bearer_status == "deceased" and r.bearer_id not in erased]
    out = []
    for r in grants:
        if not r.evidence_sha256:
            out.append(
                Finding(
                    "deceased_evidence",
                    f"{r.consent_id}: grant for deceased bearer {r.bearer_id} has no evidence",
                    (r.consent_id,),
                )
            )
            continue
        key = find_evidence(archive, r.bearer_id, r.evidence_sha256)
        if key is None:
            out.append(
                Finding(
                    "deceased_evidence",
                    f"{r.consent_id}: evidence {r.evidence_sha256[:12]}… is missing from consent-evidence/",
                    (r.consent_id,),
                )
            )
        elif sha256_of(archive, key) != r.evidence_sha256:
            out.append(
                Finding(
                    "deceased_evidence",
                    f"{r.consent_id}: evidence file {key} no longer matches its hash",
                    (r.consent_id,),
                )
            )
    return len(grants), out


def _check_revocations(
    archive: Storage, events: list[dict], models: list[dict], clips: list[dict]
) -> tuple[int, list[Finding]]:
    model_ids = {m["model_id"] for m in models}
    clip_ids = {c["clip_id"] for c in clips}
    out = []
    done = [
        json.loads(e["detail"])["carried_out"]
        for e in events
        if e["type"] == "consent revocation" and e["detail"] and "carried_out" in e["detail"]
    ]
    for rep in done:
        for mid in set(rep["models_removed"]) & model_ids:
            out.append(
                Finding(
                    "revocations_complete",
                    f"model {mid} should have been removed when {rep['bearer_id']} revoked {rep['scopes']}",
                    (mid,),
                )
            )
        for cid in set(rep["clips_removed"]) & clip_ids:
            out.append(Finding("revocations_complete", f"clip {cid} should have been removed by a revocation", (cid,)))
        for uri in rep["objects_deleted"]:
            try:
                still = archive.exists(archive.key_of(uri))
            except StorageError:
                still = False
            if still:
                out.append(
                    Finding("revocations_complete", f"{uri} was deleted by a revocation but exists again", (uri,))
                )
    unfinished = [("model", m["model_id"], "revoked") for m in models if m["status"] == "revoked"]
    unfinished += [("clip", c["clip_id"], "withdrawn") for c in clips if c["status"] == "withdrawn"]
    for kind, oid, status in unfinished:
        message = f"{kind} {oid} is marked {status} but not removed; re-run the revocation"
        out.append(Finding("revocations_complete", message, (oid,)))
    return len(done), out


def _check_fixity(recordings: dict[str, dict], events: list[dict], now: datetime, max_age_days: float) -> list[Finding]:
    last: dict[str, dict] = {}
    for e in events:
        if e["type"] == "fixity check":
            for oid in e["object_ids"]:
                if oid not in last or e["at"] > last[oid]["at"]:
                    last[oid] = e
    out = []
    for rid in recordings:
        e = last.get(rid)
        if e is None:
            out.append(
                Finding(
                    "fixity_current", f"recording {rid} has never had a fixity check; run `heirloom fixity`", (rid,)
                )
            )
        elif e["outcome"] != "success":
            out.append(
                Finding("fixity_current", f"recording {rid} failed its last fixity check ({e['at']:%Y-%m-%d})", (rid,))
            )
        elif now - e["at"] > timedelta(days=max_age_days):
            out.append(
                Finding(
                    "fixity_current",
                    f"recording {rid} was last checked {e['at']:%Y-%m-%d}, over {max_age_days:g} days ago",
                    (rid,),
                )
            )
    return out


def run_audit(
    catalog: Catalog,
    archive: Storage,
    *,
    at: datetime | None = None,
    fixity_max_age_days: float = 90,
    watermark_key: WatermarkKey | None = None,
    trust_root_pem: bytes | None = None,
) -> AuditReport:
    """Every check; the clips' watermarks are looked for when the key is given, and their Content Credentials
    must be Trusted when the site's root is given (what could not be checked is listed in ``not_checked``)."""
    now = at or utc_now()
    bearers = all_bearer_facts(catalog)
    consent_rows = catalog.read("consents").to_pylist()
    consents = [ConsentRecord.from_dict(r) for r in consent_rows]
    models = catalog.read("models").to_pylist()
    clips = catalog.read("clips").to_pylist()
    events = catalog.read("events").to_pylist()
    recordings = {r["recording_id"]: r for r in catalog.read("recordings").to_pylist()}
    erased = {e["object_ids"][0] for e in events if e["type"] == "erasure"}

    ready = [c for c in clips if c["status"] == "ready"]
    n_chain, chain = _check_chain(catalog, consent_rows)
    n_models, then, still = _check_models(catalog, [m for m in models if m["status"] != "revoked"], bearers, now)
    n_evidence, evidence = _check_evidence(archive, consents, erased)
    n_revocations, revocations = _check_revocations(archive, events, models, clips)
    findings = (
        chain
        + then
        + still
        + _check_clips(catalog, ready, models, bearers, now)
        + _check_clip_files(archive, ready, watermark_key, trust_root_pem)
        + _check_manifests(archive, models, recordings, consents)
        + evidence
        + revocations
        + _check_fixity(recordings, events, now, fixity_max_age_days)
    )
    checked = {
        "consent_chain": n_chain,
        "model_consent_at_training": n_models,
        "model_consent_now": n_models,
        "clip_lineage": len(ready),
        "clip_provenance": len(ready),
        "training_manifests": len(models),
        "deceased_evidence": n_evidence,
        "revocations_complete": n_revocations,
        "fixity_current": len(recordings),
    }
    not_checked = []
    if ready and watermark_key is None:
        not_checked.append("clips' watermarks: no key (set HEIRLOOM_WATERMARK_KEY_FILE)")
    if ready and trust_root_pem is None:
        not_checked.append("clips' Content Credentials against the site's root (set HEIRLOOM_PROVENANCE_DIR)")
    return AuditReport(at=now, checked=checked, findings=tuple(findings), not_checked=tuple(not_checked))
