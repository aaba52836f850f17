"""Registered exhibits and their tokens: add, list, retire, rotate, and who a token belongs to.

A token is shown once, when it is made, and stored only as its SHA-256: the catalog never holds one an
attacker could replay. Tokens carry 256 random bits, so looking one up by its hash needs no salt; a rotated,
retired or expired exhibit's token stops working at the next request.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from catalog.events import log_events, make_event
from catalog.manifests import Exhibit, utc_now
from catalog.tables import Catalog
from catalog.validate import check_id
from heirloom.errors import ExhibitNotFoundError, ManifestError, TokenError

TOKEN_PREFIX = "hlx_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def list_exhibits(catalog: Catalog) -> list[Exhibit]:
    return sorted((Exhibit.from_dict(_row(r)) for r in catalog.rows("exhibits")), key=lambda x: x.exhibit_id)


def _row(r: dict) -> dict:
    """A row as the record wants it: columns an older table lacked come back null, and take the defaults."""
    out = {k: v for k, v in r.items() if v is not None}
    out["bearer_ids"] = tuple(r.get("bearer_ids") or ())
    return out


def get_exhibit(catalog: Catalog, exhibit_id: str) -> Exhibit:
    check_id(exhibit_id, "exhibit_id")
    for x in list_exhibits(catalog):
        if x.exhibit_id == exhibit_id:
            return x
    raise ExhibitNotFoundError(f"no exhibit {exhibit_id}; `heirloom exhibit list` shows the registered ones")


def add_exhibit(
    catalog: Catalog,
    exhibit_id: str,
    *,
    venue: str,
    audience: str,
    purpose: str,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    bearer_ids: Sequence[str] = (),
    loudness_lufs: float = -16.0,
) -> tuple[Exhibit, str]:
    """Register an exhibit; returns it and its token (the only time the token is seen)."""
    check_id(exhibit_id, "exhibit_id")
    if any(x.exhibit_id == exhibit_id for x in list_exhibits(catalog)):
        raise ManifestError(
            f"exhibit {exhibit_id}", "is already registered; choose another id, or `heirloom exhibit rotate-token`"
        )
    known = {r["bearer_id"] for r in catalog.read("bearers", columns=["bearer_id"]).to_pylist()}
    unknown = sorted(set(bearer_ids) - known)
    if unknown:
        raise ManifestError(
            f"exhibit {exhibit_id}",
            f"unknown bearer(s) {', '.join(unknown)}; register them with `heirloom bearers add`",
        )
    token = new_token()
    exhibit = Exhibit(
        exhibit_id=exhibit_id,
        venue=venue,
        audience=audience,
        purpose=purpose,
        token_sha256=token_sha256(token),
        valid_from=valid_from or utc_now(),
        valid_until=valid_until,
        bearer_ids=tuple(sorted(set(bearer_ids))),
        loudness_lufs=loudness_lufs,
    )
    catalog.insert_new("exhibits", [exhibit], key="exhibit_id")
    detail = {"venue": venue, "audience": audience, "purpose": purpose, "bearers": list(exhibit.bearer_ids)}
    log_events(catalog, [make_event("exhibit registration", [exhibit_id], detail=detail)])
    return exhibit, token


def _save(catalog: Catalog, exhibit: Exhibit) -> None:
    catalog.replace("exhibits", f"exhibit_id = '{exhibit.exhibit_id}'", [exhibit])


def retire_exhibit(catalog: Catalog, exhibit_id: str, *, reason: str | None = None) -> Exhibit:
    """Retire an exhibit: its token stops working; its clips stay in the catalog until withdrawn."""
    exhibit = replace(get_exhibit(catalog, exhibit_id), status="retired")
    _save(catalog, exhibit)
    log_events(catalog, [make_event("exhibit registration", [exhibit_id], detail={"retired": True, "reason": reason})])
    return exhibit


def rotate_token(catalog: Catalog, exhibit_id: str) -> tuple[Exhibit, str]:
    """A new token for the exhibit; the old one stops working at once."""
    exhibit = get_exhibit(catalog, exhibit_id)
    if exhibit.status != "active":
        raise ManifestError(f"exhibit {exhibit_id}", "is retired; register a new exhibit instead")
    token = new_token()
    exhibit = replace(exhibit, token_sha256=token_sha256(token))
    _save(catalog, exhibit)
    log_events(catalog, [make_event("exhibit registration", [exhibit_id], detail={"token_rotated": True})])
    return exhibit, token


def preapprove_transcripts(catalog: Catalog, exhibit_id: str, bearer_id: str, *, by: str) -> Exhibit:
    """Approve, for this exhibit, every text that is the bearer's own transcribed words (3 or more in a row of
    one of their recordings' transcripts): such texts arrive approved by ``by``."""
    check_id(by, "curator id")
    check_id(bearer_id, "bearer_id")
    exhibit = get_exhibit(catalog, exhibit_id)
    if exhibit.bearer_ids and bearer_id not in exhibit.bearer_ids:
        raise ManifestError(f"exhibit {exhibit_id}", f"is not registered for bearer {bearer_id}")
    entries = [e for e in json.loads(exhibit.preapprovals) if e["bearer_id"] != bearer_id]
    entries.append({"bearer_id": bearer_id, "by": by, "at": utc_now().isoformat()})
    exhibit = replace(exhibit, preapprovals=json.dumps(entries))
    _save(catalog, exhibit)
    detail = {"preapproved": "transcripts", "bearer_id": bearer_id}
    log_events(catalog, [make_event("approval", [exhibit_id, bearer_id], agent=by, detail=detail)])
    return exhibit


def inactive_reason(exhibit: Exhibit, at: datetime) -> str | None:
    """Why the exhibit cannot act at ``at`` (retired, not yet open, expired), or None."""
    if exhibit.status != "active":
        return f"exhibit {exhibit.exhibit_id} is retired"
    if at < exhibit.valid_from:
        return f"exhibit {exhibit.exhibit_id} opens at {exhibit.valid_from.isoformat()}"
    if exhibit.valid_until is not None and at >= exhibit.valid_until:
        return f"exhibit {exhibit.exhibit_id} closed at {exhibit.valid_until.isoformat()}"
    return None


def authenticate(catalog: Catalog, token: str | None, *, at: datetime | None = None) -> Exhibit:
    """The exhibit whose token this is, if it may act now; else :class:`TokenError`."""
    if not token:
        raise TokenError("no exhibit token; send it as 'Authorization: Bearer <token>'")
    wanted = token_sha256(token)
    match = next((x for x in list_exhibits(catalog) if secrets.compare_digest(x.token_sha256, wanted)), None)
    if match is None:
        raise TokenError("the exhibit token is wrong or was rotated; ask the archive for the current one")
    why = inactive_reason(match, at or utc_now())
    if why is not None:
        raise TokenError(f"the exhibit token no longer works: {why}")
    return match
