"""Generating one approved text into a registered clip, or failing it with the reason; nothing half-made.

Order, for crash safety and consent: consent is decided when the text's turn comes; the clip is spoken,
checked (up to ``tries`` seeds), finished, marked, encoded and signed; consent is decided once more just
before the file is stored and the ``clips`` row written, so a revocation during generation leaves no clip.
The same exhibit, model, text, format and settings give the cached clip, not a second one.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from catalog.events import log_events, make_event
from catalog.manifests import Clip, ExhibitRequest, utc_now
from catalog.storage import Storage
from catalog.tables import Catalog
from heirloom.errors import ExhibitNotFoundError, GenerationError, HeirloomError, RequestStateError
from tasks.exhibits import get_exhibit, inactive_reason, rows_of, save, synthesis_decision
from tasks.generation.check import DEFAULT_LIMITS, CheckLimits, Transcribe, check_clip
from tasks.generation.encode import encode
from tasks.generation.render import Synthesizer, finish, speak
from tasks.watermark import WatermarkKey

TRIES = 3
STALE_S = 30 * 60.0
Sign = Callable[[Path, str, dict[str, Any]], Path]  # (encoded file, format, provenance) -> signed file


@dataclass(frozen=True)
class Voice:
    """A bearer's active model as generation needs it: who it is, how it speaks, how it is judged."""

    model_id: str
    bearer_id: str
    synthesize: Synthesizer
    transcribe: Transcribe | None = None
    model_wer: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def clip_key(exhibit_id: str, clip_id: str, fmt: str) -> str:
    return f"exhibits/{exhibit_id}/{clip_id}.{fmt}"


def cache_key(row: ExhibitRequest, voice: Voice, loudness_lufs: float) -> str:
    settings = json.dumps({"loudness_lufs": loudness_lufs, **voice.settings}, sort_keys=True)
    return hashlib.sha256(
        f"{row.exhibit_id}|{voice.model_id}|{row.text_sha256}|{row.format}|{settings}".encode()
    ).hexdigest()


def new_payload(catalog: Catalog) -> bytes:
    """Four random bytes no clip of this archive carries yet (the clip id is made from them)."""
    taken = {r["watermark_payload"] for r in catalog.read("clips", columns=["watermark_payload"]).to_pylist()}
    while True:
        payload = secrets.token_bytes(4)
        if payload.hex() not in taken:
            return payload


def _fail(catalog: Catalog, row: ExhibitRequest, reason: str, detail: dict[str, Any] | None = None) -> ExhibitRequest:
    failed = replace(row, state="failed", reason=reason, updated_at=utc_now())
    save(catalog, failed)
    ids = [row.request_id, f"{row.request_id}#{row.item}", row.exhibit_id, row.bearer_id]
    log_events(catalog, [make_event("generation", ids, "failure", detail={"reason": reason, **(detail or {})})])
    return failed


def _keep_for_listening(archive: Storage, row: ExhibitRequest, audio: np.ndarray, rate: int) -> str:
    """A failed attempt, kept for a curator to hear why; never served (the API serves only clips)."""
    key = f"exhibits/{row.exhibit_id}/failed/{row.request_id}-{row.item}.flac"
    with tempfile.TemporaryDirectory(prefix="heirloom-failed-") as tmp:
        path = Path(tmp) / "attempt.flac"
        sf.write(str(path), np.clip(audio, -1, 1), rate, subtype="PCM_24")
        with open(path, "rb") as f:
            archive.put(key, f)
    return archive.uri(key)


def generate_text(
    catalog: Catalog,
    archive: Storage,
    row: ExhibitRequest,
    *,
    voice: Voice,
    key: WatermarkKey,
    sign: Sign | None = None,
    limits: CheckLimits = DEFAULT_LIMITS,
    tries: int = TRIES,
    flow_run_id: str | None = None,
    at: datetime | None = None,
) -> ExhibitRequest:
    """Turn one queued text into a ready clip (returns its row, now ``ready``), or fail it with the reason."""
    if tries < 1:
        raise GenerationError(f"tries must be at least 1, not {tries}")
    exhibit = get_exhibit(catalog, row.exhibit_id)
    why = inactive_reason(exhibit, at or utc_now())
    if why is not None:
        return _fail(catalog, row, why)
    decision = synthesis_decision(catalog, exhibit, row.bearer_id, at or utc_now())
    if not decision.allowed:
        return _fail(catalog, row, "consent does not allow it now: " + "; ".join(decision.reasons))
    cached = cache_key(row, voice, exhibit.loudness_lufs)
    for clip in catalog.read("clips").to_pylist():
        if clip["cache_key"] == cached and clip["status"] == "ready":
            ready = replace(row, state="ready", clip_id=clip["clip_id"], reason=None, updated_at=utc_now())
            save(catalog, ready)
            return ready
    save(catalog, row := replace(row, state="generating", updated_at=utc_now()))

    for seed in range(tries):
        try:
            audio, rate = speak(voice.synthesize, row.text, seed=seed)
        except HeirloomError as e:
            return _fail(catalog, row, f"the voice cannot say this text: {e}")
        result = check_clip(
            audio, rate, row.text, transcribe=voice.transcribe, model_wer=voice.model_wer, limits=limits
        )
        if result.passed:
            break
    if not result.passed:
        heard = _keep_for_listening(archive, row, audio, rate)
        reason = f"failed its check in {tries} tries: " + "; ".join(result.problems)
        return _fail(catalog, row, reason, {"figures": result.figures, "attempt_uri": heard})

    payload = new_payload(catalog)
    clip_id = f"clip-{payload.hex()}"
    obligations = {o.kind: o.text for o in decision.obligations}
    try:
        rendered = finish(audio, rate, payload=payload, key=key, target_lufs=exhibit.loudness_lufs)
    except GenerationError as e:
        return _fail(catalog, row, str(e))
    provenance = {
        "clip_id": clip_id,
        "exhibit_id": row.exhibit_id,
        "request_id": row.request_id,
        "item": row.item,
        "bearer_id": row.bearer_id,
        "model_id": voice.model_id,
        "text_sha256": row.text_sha256,
        "consent_ids": list(decision.consent_ids),
        "approvals": json.loads(row.approvals),
        "credit_line": obligations.get("credit_line"),
        "disclosure_text": obligations.get("disclosure_text"),
        "watermark": {"payload": payload.hex(), "key": key.fingerprint},
        "check": result.figures,
    }
    metadata = {
        "title": row.text[:200],
        "artist": obligations.get("credit_line") or "",
        "comment": obligations.get("disclosure_text") or "",
        "copyright": obligations.get("credit_line") or "",
    }
    with tempfile.TemporaryDirectory(prefix="heirloom-clip-") as tmp:
        path = encode(
            rendered.audio, rendered.rate, row.format, Path(tmp) / f"{clip_id}.{row.format}", metadata=metadata
        )
        manifest_uri = None
        if sign is not None:
            path = sign(path, row.format, provenance)
        again = synthesis_decision(catalog, exhibit, row.bearer_id, utc_now())
        if not again.allowed:
            return _fail(catalog, row, "consent was withdrawn during generation; no clip was kept")
        with open(path, "rb") as f:
            info = archive.create(clip_key(row.exhibit_id, clip_id, row.format), f)
        sidecar = path.with_name(path.name + ".c2pa")
        if sidecar.exists():
            with open(sidecar, "rb") as f:
                manifest_uri = archive.uri(archive.put(f"exhibits/{row.exhibit_id}/{clip_id}.c2pa", f).key)
    clip = Clip(
        clip_id=clip_id,
        exhibit_id=row.exhibit_id,
        model_id=voice.model_id,
        text_sha256=row.text_sha256,
        watermark_payload=payload.hex(),
        uri=archive.uri(info.key),
        sha256=info.sha256 or "",
        request_id=row.request_id,
        bearer_id=row.bearer_id,
        format=row.format,
        duration_s=rendered.seconds,
        cache_key=cached,
        consent_ids=tuple(decision.consent_ids),
        approvals=row.approvals,
        credit_line=obligations.get("credit_line"),
        disclosure_text=obligations.get("disclosure_text"),
        manifest_uri=manifest_uri,
    )
    catalog.append("clips", [clip])
    ready = replace(row, state="ready", clip_id=clip_id, reason=None, updated_at=utc_now())
    save(catalog, ready)
    detail = {**provenance, "loudness_lufs": rendered.loudness_lufs, "true_peak_dbtp": rendered.true_peak_dbtp}
    ids = [clip_id, row.request_id, row.exhibit_id, row.bearer_id, voice.model_id]
    log_events(catalog, [make_event("generation", ids, detail=detail, flow_run_id=flow_run_id)])
    return ready


def queued(catalog: Catalog, *, request_id: str | None = None, stale_s: float = STALE_S) -> list[ExhibitRequest]:
    """Texts approved and waiting for generation (of one request, when given), and texts whose generation
    started more than ``stale_s`` ago and never finished (its run died): those are taken up again."""
    now = utc_now()
    return [
        r
        for r in rows_of(catalog, request_id=request_id)
        if r.state == "queued" or (r.state == "generating" and (now - r.updated_at).total_seconds() > stale_s)
    ]


def fail_texts(catalog: Catalog, rows: list[ExhibitRequest], reason: str) -> list[ExhibitRequest]:
    """Mark texts failed with ``reason`` (a run that cannot start says why, rather than leave them queued)."""
    return [_fail(catalog, r, reason) for r in rows]


def requeue(catalog: Catalog, request_id: str, *, by: str, item: int | None = None) -> list[ExhibitRequest]:
    """Queue failed texts again (their approvals stand): a retry after the cause was fixed."""
    rows = [r for r in rows_of(catalog, request_id=request_id) if item is None or r.item == item]
    if not rows:
        raise ExhibitNotFoundError(f"no request {request_id}; `heirloom exhibit requests` lists them")
    again = []
    for r in rows:
        if r.state != "failed":
            raise RequestStateError(f"text {r.item} of {request_id} is {r.state}; only failed texts are retried")
        save(catalog, new := replace(r, state="queued", reason=None, updated_at=utc_now()))
        again.append(new)
    ids = [request_id, *(f"{request_id}#{r.item}" for r in again)]
    log_events(catalog, [make_event("generation", ids, "warning", agent=by, detail={"retry": True})])
    return again
