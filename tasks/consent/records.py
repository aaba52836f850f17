"""Writing and reading consent records: grants, changes and revocations, chained per bearer by hash."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from catalog.events import make_event
from catalog.manifests import ConsentRecord, utc_now
from catalog.storage import Storage
from catalog.tables import Catalog
from heirloom.errors import ConsentError
from heirloom.vocabulary import CUSTODIAN_GRANTORS
from policies.consent import check_scopes, eligible_grantor, latest, record_hash
from policies.decide import BearerFacts
from tasks.consent.people import store_evidence


def all_bearer_facts(catalog: Catalog) -> dict[str, BearerFacts]:
    """Every registered bearer as the policy sees them, by id."""
    return {
        r["bearer_id"]: BearerFacts(r["bearer_id"], r["status"], tuple(r["community_ids"] or ()))
        for r in catalog.read("bearers").to_pylist()
    }


def bearer_facts(catalog: Catalog, bearer_id: str) -> BearerFacts:
    facts = all_bearer_facts(catalog).get(bearer_id)
    if facts is None:
        raise ConsentError(bearer_id, f"is not registered; run `heirloom bearers add {bearer_id}` first")
    return facts


def consent_records(
    catalog: Catalog, bearer_id: str | None = None, as_of: datetime | None = None
) -> list[ConsentRecord]:
    """All consent records (of one bearer), in recorded order; ``as_of`` reads the table as it was then."""
    rows = catalog.read("consents", as_of=as_of).to_pylist()
    records = [ConsentRecord.from_dict(r) for r in rows if bearer_id is None or r["bearer_id"] == bearer_id]
    return sorted(records, key=lambda r: r.recorded_at)


def append_consent(catalog: Catalog, record: ConsentRecord, *, flow_run_id: str | None = None) -> ConsentRecord:
    """Chain ``record`` to the bearer's last record, hash it, append it and log the event."""
    previous = consent_records(catalog, record.bearer_id)
    chained = replace(record, previous_sha256=previous[-1].record_sha256 if previous else None, record_sha256="")
    chained = replace(chained, record_sha256=record_hash(chained.to_row()))
    catalog.append("consents", [chained])
    event = "consent revocation" if chained.supersedes_id and chained.reason else "consent grant"
    catalog.append(
        "events",
        [
            make_event(
                event,
                [chained.bearer_id, chained.consent_id],
                detail={
                    "record_sha256": chained.record_sha256,
                    "scopes": list(chained.scopes),
                    "status": chained.status,
                },
                flow_run_id=flow_run_id,
            )
        ],
    )
    return chained


def grant(
    catalog: Catalog,
    archive: Storage,
    *,
    bearer_id: str,
    grantor_type: str,
    grantor_id: str,
    scopes: Sequence[str],
    evidence: Path | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    tk_labels: Sequence[str] = (),
    excluded_recordings: Sequence[str] = (),
    audiences: Sequence[str] = (),
    custodians: Sequence[str] = (),
    method: str | None = None,
    consent_language: str | None = None,
    disclosure_text: str | None = None,
    credit_line: str | None = None,
) -> ConsentRecord:
    """Record a grant. It supersedes the same grantor's record in force, if any (a grant replaces, not adds).

    A deceased bearer's grant must come from a custodian (family, community authority, estate) with evidence.
    """
    facts = bearer_facts(catalog, bearer_id)
    scopes = check_scopes(bearer_id, scopes)
    if not scopes:
        raise ConsentError(bearer_id, "a grant needs at least one --scope; silence means no")
    if facts.status == "deceased" and (grantor_type not in CUSTODIAN_GRANTORS or evidence is None):
        raise ConsentError(
            bearer_id,
            "has died: a grant must come from a custodian (family, community_authority, estate) with --evidence",
        )
    if grantor_type == "self" and grantor_id != bearer_id:
        raise ConsentError(bearer_id, f"a self grant must have grantor_id {bearer_id}, not {grantor_id}")
    evidence_sha = store_evidence(archive, bearer_id, evidence) if evidence is not None else None
    heads = [
        r
        for r in latest(consent_records(catalog, bearer_id))
        if (r.grantor_type, r.grantor_id) == (grantor_type, grantor_id)
    ]
    record = ConsentRecord(
        consent_id=f"c-{uuid.uuid4().hex[:16]}",
        supersedes_id=heads[-1].consent_id if heads else None,
        bearer_id=bearer_id,
        bearer_status=facts.status,
        grantor_type=grantor_type,  # type: ignore[arg-type]
        grantor_id=grantor_id,
        scopes=scopes,
        valid_from=valid_from or utc_now(),
        valid_until=valid_until,
        tk_labels=tuple(tk_labels),
        excluded_recordings=tuple(excluded_recordings),
        audiences=tuple(audiences),
        custodians=tuple(custodians),
        method=method,
        consent_language=consent_language,
        evidence_sha256=evidence_sha,
        disclosure_text=disclosure_text,
        credit_line=credit_line,
    )
    refusal = eligible_grantor(record, facts.status, bearer_id)
    if refusal is not None:
        raise ConsentError(bearer_id, refusal.split(": ", 1)[1])
    return append_consent(catalog, record)


def revoke_scopes(
    catalog: Catalog, bearer_id: str, scopes: Sequence[str], reason: str, *, flow_run_id: str | None = None
) -> list[ConsentRecord]:
    """Withdraw ``scopes`` from every record at the head of the bearer's chains that holds any of them.

    Each such record is superseded by a copy without those scopes (status ``revoked`` when none remain).
    Returns the new records; none when nothing held the scopes (so a re-run adds nothing).
    """
    bearer_facts(catalog, bearer_id)
    scopes = check_scopes(bearer_id, scopes)
    if not reason.strip():
        raise ConsentError(bearer_id, "a revocation needs a reason (--reason)")
    out = []
    for head in latest(consent_records(catalog, bearer_id)):
        if head.status != "active" or not set(head.scopes) & set(scopes):
            continue
        remaining = tuple(s for s in head.scopes if s not in scopes)
        record = replace(
            head,
            consent_id=f"c-{uuid.uuid4().hex[:16]}",
            supersedes_id=head.consent_id,
            scopes=remaining,
            status="active" if remaining else "revoked",
            reason=reason,
            recorded_at=utc_now(),
        )
        out.append(append_consent(catalog, record, flow_run_id=flow_run_id))
    return out
