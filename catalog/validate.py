"""Validators for catalog records: plain registered functions that raise :class:`ManifestError`.

Every catalog writer calls :func:`validate` before it appends, so a bad row never reaches a table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from catalog.manifests import (
    CLIP_FORMATS,
    REQUEST_STATES,
    Bearer,
    Clip,
    ConsentRecord,
    Derivative,
    Event,
    Exhibit,
    ExhibitRequest,
    Record,
    Recording,
    Segment,
    VoiceModelVersion,
)
from heirloom.errors import ManifestError
from heirloom.vocabulary import BEARER_STATUSES, GRANTOR_TYPES, SCOPES

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")

# PREMIS event types heirloom writes (https://id.loc.gov/vocabulary/preservation/eventType).
EVENT_TYPES = frozenset(
    {
        "ingestion",
        "message digest calculation",
        "validation",
        "quarantine",
        "duplicate detection",
        "fixity check",
        "replication",
        "creation",
        "modification",
        "deletion",
        "normalization",
        "metadata modification",
        # heirloom's own, beyond PREMIS: consent and erasure
        "consent grant",
        "consent revocation",
        "erasure",
        "audit",
        "alignment",
        # exhibits: registration, requests, approval, generation, serving, withdrawal
        "exhibit registration",
        "exhibit request",
        "approval",
        "rejection",
        "generation",
        "withdrawal",
    }
)

_VALIDATORS: dict[type, Callable[[Any], None]] = {}


def register_validator(cls: type) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    def wrap(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        _VALIDATORS[cls] = fn
        return fn

    return wrap


def check_id(value: str, what: str) -> None:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise ManifestError(
            what, f"{value!r} is not a valid id: use 1-64 letters, digits, '.', '_' or '-', starting alnum"
        )


def validate(record: Record) -> None:
    """Raise :class:`ManifestError` if ``record`` is not fit for its table."""
    fn = _VALIDATORS.get(type(record))
    if fn is None:
        raise ManifestError(type(record).__name__, "no validator is registered for this record type")
    fn(record)


@register_validator(Bearer)
def validate_bearer(b: Bearer) -> None:
    check_id(b.bearer_id, "bearer_id")
    if b.status not in BEARER_STATUSES:
        raise ManifestError(f"bearer {b.bearer_id}", f"status {b.status!r} must be 'living' or 'deceased'")


@register_validator(Recording)
def validate_recording(r: Recording) -> None:
    where = f"recording {r.recording_id}"
    if not SHA256_PATTERN.match(r.recording_id):
        raise ManifestError(where, "recording_id must be the lowercase hex SHA-256 of the original's bytes")
    check_id(r.bearer_id, f"{where} bearer_id")
    check_id(r.collection, f"{where} collection")
    if not 1 <= r.channels <= 64:
        raise ManifestError(where, f"channels={r.channels} is outside 1..64")
    if not 1000 <= r.sample_rate <= 768_000:
        raise ManifestError(where, f"sample_rate={r.sample_rate} Hz is outside 1 kHz..768 kHz")
    if not (math.isfinite(r.duration_s) and r.duration_s > 0):
        raise ManifestError(where, f"duration_s={r.duration_s} must be a positive number")
    if r.size_bytes <= 0:
        raise ManifestError(where, "size_bytes must be positive")
    if r.recording_id not in r.original_uri:
        raise ManifestError(where, f"original_uri {r.original_uri} does not name the recording's hash")


@register_validator(Event)
def validate_event(e: Event) -> None:
    if e.type not in EVENT_TYPES:
        raise ManifestError(f"event {e.event_id}", f"type {e.type!r} is not one of {sorted(EVENT_TYPES)}")
    if e.outcome not in ("success", "failure", "warning"):
        raise ManifestError(f"event {e.event_id}", f"outcome {e.outcome!r} must be success, failure or warning")
    if not e.agent:
        raise ManifestError(f"event {e.event_id}", "agent is empty; name a person or software@version")


def _check_sha(value: str | None, where: str, what: str) -> None:
    if value is not None and not SHA256_PATTERN.match(value):
        raise ManifestError(where, f"{what} must be a lowercase hex SHA-256, got {value!r}")


@register_validator(ConsentRecord)
def validate_consent(c: ConsentRecord) -> None:
    where = f"consent {c.consent_id}"
    check_id(c.consent_id, "consent_id")
    check_id(c.bearer_id, f"{where} bearer_id")
    check_id(c.grantor_id, f"{where} grantor_id")
    if c.grantor_type not in GRANTOR_TYPES:
        raise ManifestError(where, f"grantor_type {c.grantor_type!r} must be one of {list(GRANTOR_TYPES)}")
    if c.bearer_status not in BEARER_STATUSES:
        raise ManifestError(where, f"bearer_status {c.bearer_status!r} must be 'living' or 'deceased'")
    unknown = [s for s in c.scopes if s not in SCOPES]
    if unknown:
        raise ManifestError(where, f"unknown scope(s) {unknown}; scopes are {list(SCOPES)}")
    if c.status not in ("active", "revoked"):
        raise ManifestError(where, f"status {c.status!r} must be 'active' or 'revoked'")
    if c.valid_until is not None and c.valid_until <= c.valid_from:
        raise ManifestError(where, "valid_until must come after valid_from")
    for name in ("record_sha256", "previous_sha256", "evidence_sha256"):
        _check_sha(getattr(c, name), where, name)
    for rid in c.excluded_recordings:
        _check_sha(rid, where, "excluded recording id")


@register_validator(VoiceModelVersion)
def validate_model(m: VoiceModelVersion) -> None:
    where = f"model {m.model_id}"
    check_id(m.model_id, "model_id")
    check_id(m.bearer_id, f"{where} bearer_id")
    check_id(m.consent_id, f"{where} consent_id")
    if m.version < 1:
        raise ManifestError(where, "version numbers start at 1")
    if m.status not in ("candidate", "active", "retired", "revoked"):
        raise ManifestError(where, f"status {m.status!r} must be candidate, active, retired or revoked")
    for name in ("dataset_manifest_sha256", "artifact_sha256", "base_model_sha256"):
        _check_sha(getattr(m, name), where, name)


@register_validator(Exhibit)
def validate_exhibit(x: Exhibit) -> None:
    check_id(x.exhibit_id, "exhibit_id")
    _check_sha(x.token_sha256, f"exhibit {x.exhibit_id}", "token_sha256")
    if not x.audience or not x.purpose:
        raise ManifestError(f"exhibit {x.exhibit_id}", "audience and purpose are required")
    if x.valid_until is not None and x.valid_until <= x.valid_from:
        raise ManifestError(f"exhibit {x.exhibit_id}", "valid_until must be after valid_from")
    for b in x.bearer_ids:
        check_id(b, f"exhibit {x.exhibit_id} bearer_id")
    if x.status not in ("active", "retired"):
        raise ManifestError(f"exhibit {x.exhibit_id}", f"status {x.status!r} must be 'active' or 'retired'")
    if not -40.0 <= x.loudness_lufs <= -5.0:
        raise ManifestError(f"exhibit {x.exhibit_id}", f"loudness {x.loudness_lufs} LUFS is outside -40 to -5")


@register_validator(ExhibitRequest)
def validate_exhibit_request(r: ExhibitRequest) -> None:
    where = f"request {r.request_id} text {r.item}"
    check_id(r.request_id, "request_id")
    check_id(r.exhibit_id, f"{where} exhibit_id")
    check_id(r.bearer_id, f"{where} bearer_id")
    _check_sha(r.text_sha256, where, "text_sha256")
    if r.state not in REQUEST_STATES:
        raise ManifestError(where, f"state {r.state!r} must be one of {', '.join(REQUEST_STATES)}")
    if r.format not in CLIP_FORMATS:
        raise ManifestError(where, f"format {r.format!r} must be one of {', '.join(CLIP_FORMATS)}")
    if r.state in ("rejected", "failed") and not r.reason:
        raise ManifestError(where, f"a {r.state} text needs its reason")
    if r.state == "ready" and not r.clip_id:
        raise ManifestError(where, "a ready text needs its clip_id")


@register_validator(Segment)
def validate_segment(s: Segment) -> None:
    where = f"segment {s.segment_id}"
    check_id(s.segment_id, "segment_id")
    if not 0 <= s.start_s < s.end_s:
        raise ManifestError(where, f"start {s.start_s} and end {s.end_s} must satisfy 0 <= start < end")


@register_validator(Clip)
def validate_clip(c: Clip) -> None:
    where = f"clip {c.clip_id}"
    check_id(c.clip_id, "clip_id")
    check_id(c.exhibit_id, f"{where} exhibit_id")
    check_id(c.model_id, f"{where} model_id")
    _check_sha(c.sha256, where, "sha256")
    _check_sha(c.text_sha256, where, "text_sha256")
    if c.status not in ("ready", "withdrawn"):
        raise ManifestError(where, f"status {c.status!r} must be 'ready' or 'withdrawn'")


@register_validator(Derivative)
def validate_derivative(d: Derivative) -> None:
    where = f"derivative {d.recording_id[:12]}/{d.params_hash[:12]}"
    _check_sha(d.recording_id, where, "recording_id")
    _check_sha(d.params_hash, where, "params_hash")
    if d.gate not in ("pass", "review", "fail"):
        raise ManifestError(where, f"gate {d.gate!r} must be pass, review or fail")
    if d.gate != "pass" and not d.gate_reasons:
        raise ManifestError(where, f"a {d.gate} gate needs its reasons")
    if d.sample_rate <= 0 or not math.isfinite(d.duration_s) or d.duration_s < 0:
        raise ManifestError(where, "sample_rate and duration_s must be positive numbers")
