"""Validators for catalog records: plain registered functions that raise :class:`ManifestError`.

Every catalog writer calls :func:`validate` before it appends, so a bad row never reaches a table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from catalog.manifests import Bearer, Event, Record, Recording
from heirloom.errors import ManifestError

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
    if b.status not in ("living", "deceased"):
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
