"""Texts an exhibit asks to hear in a bearer's voice, and a curator's (and a community's) approval of each.

A request is checked when it arrives (the exhibit may ask for this bearer, consent allows synthesis for the
exhibit's audience and purpose today, the texts are within the limits and not asked for already) and becomes
one ``exhibit_requests`` row per text, awaiting approval. Consent is checked again when the clip is
generated: approval is not consent.

Two approvers are needed, the second acting for the community, where the bearer's labels or their
community protocol ask for community review (``community_review`` in a protocol file) or the bearer
belongs to more than one community.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from catalog.events import log_events, make_event
from catalog.manifests import CLIP_FORMATS, Exhibit, ExhibitRequest, utc_now
from catalog.tables import Catalog
from catalog.validate import check_id
from heirloom.errors import (
    ConsentError,
    DuplicateTextError,
    ExhibitNotFoundError,
    ExhibitRefusedError,
    InvalidRequestError,
    RequestStateError,
    RequestTooLargeError,
)
from policies.decide import Context, Decision, Subject, decide
from policies.protocols import load_protocols
from tasks.align import words_of
from tasks.consent import bearer_facts, consent_records
from tasks.exhibits.registry import inactive_reason

Role = Literal["curator", "community"]
ROLES: tuple[str, ...] = ("curator", "community")
SETTLED = ("rejected", "failed", "withdrawn")


@dataclass(frozen=True)
class RequestLimits:
    """What one request may ask for (documented in the README; the API answers 413 beyond them)."""

    max_texts: int = 20
    max_chars: int = 600


def normalize_text(text: str) -> str:
    """The text as it is spoken and hashed: NFC, whitespace collapsed, no control characters."""
    cleaned = "".join(c for c in unicodedata.normalize("NFC", text) if unicodedata.category(c)[0] != "C" or c in " \n")
    return " ".join(cleaned.split())


def text_sha256(text: str) -> str:
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()


def rows_of(catalog: Catalog, *, request_id: str | None = None, exhibit_id: str | None = None) -> list[ExhibitRequest]:
    rows = catalog.rows("exhibit_requests")
    out = [
        ExhibitRequest.from_dict(r)
        for r in rows
        if (request_id is None or r["request_id"] == request_id)
        and (exhibit_id is None or r["exhibit_id"] == exhibit_id)
    ]
    return sorted(out, key=lambda r: (r.created_at, r.request_id, r.item))


def synthesis_decision(catalog: Catalog, exhibit: Exhibit, bearer_id: str, at: datetime) -> Decision:
    """``decide("synthesize", ...)`` for this bearer in this exhibit's audience and purpose at ``at``."""
    subject = Subject(bearer_facts(catalog, bearer_id), tuple(consent_records(catalog, bearer_id)))
    return decide("synthesize", subject, Context(at=at, audience=exhibit.audience, purpose=exhibit.purpose))


def approvals_needed(catalog: Catalog, bearer_id: str) -> int:
    """2 where community review is asked for (labels, protocol, several communities), else 1."""
    facts = bearer_facts(catalog, bearer_id)
    if len(facts.community_ids) > 1:
        return 2
    labels = {label for r in consent_records(catalog, bearer_id) for label in r.tk_labels}
    labels |= {
        label
        for r in catalog.read("recordings", columns=["bearer_id", "tk_labels"]).to_pylist()
        if r["bearer_id"] == bearer_id
        for label in r["tk_labels"] or ()
    }
    protocols = load_protocols()
    return 2 if any((rule := protocols.rule(label)) is not None and rule.community_review for label in labels) else 1


def _preapproval(catalog: Catalog, exhibit: Exhibit, bearer_id: str) -> dict | None:
    return next((e for e in json.loads(exhibit.preapprovals) if e["bearer_id"] == bearer_id), None)


def transcribed_words(catalog: Catalog, bearer_id: str) -> list[list[str]]:
    """The words of each of the bearer's recordings' transcripts."""
    rows = catalog.read("recordings", columns=["bearer_id", "transcript"]).to_pylist()
    return [words_of(r["transcript"]) for r in rows if r["bearer_id"] == bearer_id and r["transcript"]]


def from_transcripts(transcripts: list[list[str]], text: str) -> bool:
    """Whether ``text`` is words the bearer said: 3 or more, in a row, in one of ``transcripts``."""
    wanted = words_of(text)
    n = len(wanted)
    return n >= 3 and any(said[i : i + n] == wanted for said in transcripts for i in range(len(said) - n + 1))


def submit(
    catalog: Catalog,
    exhibit: Exhibit,
    bearer_id: str,
    texts: Sequence[str],
    fmt: str,
    *,
    limits: RequestLimits = RequestLimits(),
    at: datetime | None = None,
) -> list[ExhibitRequest]:
    """Check an exhibit's request and record each text as awaiting approval; returns the rows."""
    at = at or utc_now()
    check_id(bearer_id, "bearer_id")
    if fmt not in CLIP_FORMATS:
        raise ExhibitRefusedError(f"format {fmt!r} is not offered; choose one of {', '.join(CLIP_FORMATS)}")
    if not texts:
        raise InvalidRequestError("a request needs at least one text")
    if len(texts) > limits.max_texts:
        raise RequestTooLargeError(f"{len(texts)} texts in one request; at most {limits.max_texts}: split it")
    cleaned = [normalize_text(t) for t in texts]
    for i, t in enumerate(cleaned):
        if not t:
            raise InvalidRequestError(f"text {i} is empty once whitespace and control characters are removed")
        if len(t) > limits.max_chars:
            raise RequestTooLargeError(f"text {i} has {len(t)} characters; at most {limits.max_chars}: split it")
    why = inactive_reason(exhibit, at)
    if why is not None:
        raise ExhibitRefusedError(why)
    if exhibit.bearer_ids and bearer_id not in exhibit.bearer_ids:
        raise ExhibitRefusedError(
            f"exhibit {exhibit.exhibit_id} is not registered for bearer {bearer_id}; a curator can add the bearer"
        )
    try:
        decision = synthesis_decision(catalog, exhibit, bearer_id, at)
    except ConsentError:  # an unregistered id is refused in the words an unconsented one is: ids stay private
        decision = Decision(False, (f"no consent record in force for bearer {bearer_id}: silence means no",))
    if not decision.allowed:
        raise ExhibitRefusedError(f"consent does not allow {bearer_id}'s voice here", reasons=decision.reasons)
    hashes = [text_sha256(t) for t in cleaned]
    if len(set(hashes)) < len(hashes):
        raise DuplicateTextError("the same text appears twice in this request; send it once")
    earlier = {
        (r.text_sha256, r.format): r.request_id
        for r in rows_of(catalog, exhibit_id=exhibit.exhibit_id)
        if r.bearer_id == bearer_id and r.state not in SETTLED
    }
    for i, h in enumerate(hashes):
        if (h, fmt) in earlier:
            raise DuplicateTextError(f"text {i} was already requested as {earlier[(h, fmt)]}; follow that request")
    needed = approvals_needed(catalog, bearer_id)
    pre = _preapproval(catalog, exhibit, bearer_id)
    transcripts = transcribed_words(catalog, bearer_id) if pre is not None else []
    request_id = "rq-" + uuid.uuid4().hex[:20]
    rows = []
    for i, (t, h) in enumerate(zip(cleaned, hashes, strict=True)):
        approvals = []
        if pre is not None and from_transcripts(transcripts, t):
            approvals = [{"by": pre["by"], "role": "curator", "at": pre["at"], "preapproved": "transcript"}]
        state = "queued" if approvals and needed < 2 else "awaiting_approval"
        rows.append(
            ExhibitRequest(
                request_id=request_id,
                item=i,
                exhibit_id=exhibit.exhibit_id,
                bearer_id=bearer_id,
                text=t,
                text_sha256=h,
                format=fmt,
                state=state,
                approvals=json.dumps(approvals),
                approvals_needed=needed,
                created_at=at,
                updated_at=at,
            )
        )
    catalog.append("exhibit_requests", rows)
    event = make_event(
        "exhibit request",
        [request_id, exhibit.exhibit_id, bearer_id],
        detail={"texts": len(rows), "format": fmt, "approvals_needed": needed},
    )
    log_events(catalog, [event])
    return rows


def save(catalog: Catalog, row: ExhibitRequest) -> None:
    """Write one text's new state in place of its old row."""
    catalog.replace("exhibit_requests", f"request_id = '{row.request_id}' AND item = {int(row.item)}", [row])


def _items(catalog: Catalog, request_id: str, item: int | None) -> list[ExhibitRequest]:
    check_id(request_id, "request_id")
    rows = rows_of(catalog, request_id=request_id)
    if item is not None:
        rows = [r for r in rows if r.item == item]
    if not rows:
        which = f"text {item} of request {request_id}" if item is not None else f"request {request_id}"
        raise ExhibitNotFoundError(f"no {which}; `heirloom exhibit requests` lists them")
    return rows


def approve(
    catalog: Catalog, request_id: str, *, by: str, role: Role = "curator", item: int | None = None
) -> list[ExhibitRequest]:
    """Record ``by``'s approval of the request's texts (or text ``item``); a text with every approval it needs
    is queued for generation. An approver counts once per text, and a second approver must act for the
    community."""
    check_id(by, "approver id")
    if role not in ROLES:
        raise RequestStateError(f"role {role!r} must be one of {', '.join(ROLES)}")
    changed = []
    for row in _items(catalog, request_id, item):
        if row.state != "awaiting_approval":
            raise RequestStateError(f"text {row.item} of {request_id} is {row.state}, not awaiting approval")
        approvals = json.loads(row.approvals)
        if any(a["by"] == by for a in approvals):
            raise RequestStateError(f"{by} has already approved text {row.item} of {request_id}; a second person must")
        approvals.append({"by": by, "role": role, "at": utc_now().isoformat()})
        done = len(approvals) >= row.approvals_needed and (
            row.approvals_needed < 2 or any(a["role"] == "community" for a in approvals)
        )
        new = replace(row, approvals=json.dumps(approvals), state="queued" if done else row.state, updated_at=utc_now())
        save(catalog, new)
        changed.append(new)
    ids = [request_id, *(f"{request_id}#{r.item}" for r in changed)]
    log_events(
        catalog, [make_event("approval", ids, agent=by, detail={"role": role, "items": [r.item for r in changed]})]
    )
    return changed


def reject(catalog: Catalog, request_id: str, *, by: str, reason: str, item: int | None = None) -> list[ExhibitRequest]:
    """Reject the request's texts (or text ``item``) with a reason the exhibit is shown."""
    check_id(by, "curator id")
    if not reason.strip():
        raise RequestStateError("a rejection needs a reason the exhibit can read")
    changed = []
    for row in _items(catalog, request_id, item):
        if row.state not in ("awaiting_approval", "queued", "failed"):
            raise RequestStateError(f"text {row.item} of {request_id} is {row.state}; it cannot be rejected now")
        new = replace(row, state="rejected", reason=reason.strip(), updated_at=utc_now())
        save(catalog, new)
        changed.append(new)
    ids = [request_id, *(f"{request_id}#{r.item}" for r in changed)]
    log_events(catalog, [make_event("rejection", ids, agent=by, detail={"reason": reason})])
    return changed


def pending(catalog: Catalog) -> list[ExhibitRequest]:
    return [r for r in rows_of(catalog) if r.state == "awaiting_approval"]
