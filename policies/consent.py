"""Consent records as the policy sees them: which are in force at an instant, and the tamper-evident chain.

Pure functions over any object shaped like a consent record (:class:`ConsentLike`); nothing here reads or
writes storage.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from heirloom.errors import ConsentError
from heirloom.vocabulary import CUSTODIAN_GRANTORS, SCOPES


class ConsentLike(Protocol):
    consent_id: str
    supersedes_id: str | None
    bearer_id: str
    bearer_status: str
    grantor_type: str
    grantor_id: str
    scopes: tuple[str, ...]
    tk_labels: tuple[str, ...]
    excluded_recordings: tuple[str, ...]
    audiences: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime | None
    evidence_sha256: str | None
    disclosure_text: str | None
    credit_line: str | None
    status: str
    recorded_at: datetime


def check_scopes(bearer_id: str, scopes: Iterable[str]) -> tuple[str, ...]:
    """Validate and order scopes; raise :class:`ConsentError` naming the unknown ones."""
    scopes = tuple(dict.fromkeys(scopes))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ConsentError(bearer_id, f"unknown scope(s) {unknown}; scopes are {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in scopes)


def in_force(records: Sequence[ConsentLike], at: datetime) -> list[ConsentLike]:
    """The records in force at ``at``: recorded by then, not superseded by then, active and within validity."""
    known = [r for r in records if r.recorded_at <= at]
    superseded = {r.supersedes_id for r in known if r.supersedes_id}
    return [
        r
        for r in known
        if r.consent_id not in superseded
        and r.status == "active"
        and r.valid_from <= at
        and (r.valid_until is None or at < r.valid_until)
    ]


def latest(records: Sequence[ConsentLike]) -> list[ConsentLike]:
    """The heads of the supersession chains (whatever their status or validity)."""
    superseded = {r.supersedes_id for r in records if r.supersedes_id}
    return [r for r in records if r.consent_id not in superseded]


def eligible_grantor(record: ConsentLike, bearer_status: str, bearer_id: str) -> str | None:
    """None when ``record`` comes from a grantor who may speak for the bearer now, else why not."""
    if bearer_status == "deceased":
        if record.grantor_type not in CUSTODIAN_GRANTORS:
            return (
                f"{record.consent_id}: the bearer has died; only custodians ({', '.join(CUSTODIAN_GRANTORS)}) grant now"
            )
        if not record.evidence_sha256:
            return f"{record.consent_id}: a custodian's grant for a deceased bearer needs evidence"
        return None
    if record.grantor_type == "self":
        return (
            None if record.grantor_id == bearer_id else f"{record.consent_id}: a self grant must come from the bearer"
        )
    if record.grantor_type == "legal_guardian":
        return None if record.evidence_sha256 else f"{record.consent_id}: a guardian's grant needs evidence"
    if record.grantor_type == "community_authority":
        return None  # a community's own grant; it counts alongside the bearer's, never instead of it
    return f"{record.consent_id}: a {record.grantor_type} cannot grant for a living bearer"


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_canonical(v) for v in value]
    return value


def record_hash(fields: Mapping[str, Any]) -> str:
    """SHA-256 over a record's fields in canonical JSON, ``record_sha256`` itself left out."""
    body = {k: _canonical(v) for k, v in sorted(fields.items()) if k not in ("record_sha256", "kind", "schema_version")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def chain_breaks(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Check one bearer's records (in recorded order) against their hashes and their chain links.

    Returns a sentence per break: a record whose content no longer matches its hash, or whose link to
    the previous record is wrong.
    """
    problems = []
    previous: str | None = None
    for row in sorted(rows, key=lambda r: r["recorded_at"]):
        if record_hash(row) != row["record_sha256"]:
            problems.append(f"{row['consent_id']}: content does not match its record_sha256 (altered after writing)")
        if row.get("previous_sha256") != previous:
            problems.append(f"{row['consent_id']}: previous_sha256 does not link to the record before it")
        previous = row["record_sha256"]
    return problems
