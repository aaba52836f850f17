"""Typed records for catalog rows: frozen dataclasses that round-trip through plain dicts.

Each record names its ``kind`` and ``schema_version`` in its dict form, so nothing has to guess a type from
which keys are present. The ``segments`` record comes with the alignment stage; its Arrow schema already
lives in :mod:`catalog.schemas`.

>>> b = Bearer(bearer_id="b01", dialect="en-gb-scotland", status="living")
>>> Bearer.from_dict(b.to_dict()) == b
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar

BearerStatus = Literal["living", "deceased"]
RecordingStatus = Literal["ingested"]
EventOutcome = Literal["success", "failure", "warning"]
GrantorType = Literal["self", "legal_guardian", "family", "community_authority", "estate"]
ConsentStatus = Literal["active", "revoked"]
ModelStatus = Literal["candidate", "active", "retired", "revoked"]
ClipStatus = Literal["ready", "withdrawn"]
ExhibitStatus = Literal["active", "retired"]
RequestState = Literal["awaiting_approval", "rejected", "queued", "generating", "ready", "failed", "withdrawn"]
REQUEST_STATES: tuple[str, ...] = (
    "awaiting_approval",
    "rejected",
    "queued",
    "generating",
    "ready",
    "failed",
    "withdrawn",
)
CLIP_MEDIA_TYPES: dict[str, str] = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "opus": "audio/ogg",
}
CLIP_FORMATS: tuple[str, ...] = tuple(CLIP_MEDIA_TYPES)
GateResult = Literal["pass", "review", "fail"]

R = TypeVar("R", bound="Record")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Record:
    """Base of every row record: dict round-trip and edited copies."""

    KIND: ClassVar[str] = "record"
    SCHEMA_VERSION: ClassVar[int] = 1
    TABLE: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.KIND, "schema_version": self.SCHEMA_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_row(self) -> dict[str, Any]:
        """The dict as a table row (no ``kind``/``schema_version``: the table says what it holds)."""
        row = self.to_dict()
        del row["kind"], row["schema_version"]
        return row

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        kind = data.get("kind", cls.KIND)
        if kind != cls.KIND:
            raise ValueError(f"a {kind!r} dict cannot become a {cls.KIND!r} record")
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names}
        return cls(**values)

    def copy_with(self: R, **changes: Any) -> R:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Bearer(Record):
    KIND: ClassVar[str] = "bearer"
    TABLE: ClassVar[str] = "bearers"

    bearer_id: str
    status: BearerStatus = "living"
    dialect: str | None = None
    community_ids: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    created_at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class Recording(Record):
    """An ingested original. ``recording_id`` is the SHA-256 of the original's bytes."""

    KIND: ClassVar[str] = "recording"
    TABLE: ClassVar[str] = "recordings"

    recording_id: str
    bearer_id: str
    collection: str
    source_uri: str
    original_uri: str
    format: str
    codec: str
    sample_rate: int
    channels: int
    duration_s: float
    size_bytes: int
    bit_depth: int | None = None
    title: str | None = None
    transcript: str | None = None
    language: str | None = None
    dialect: str | None = None
    tk_labels: tuple[str, ...] = ()
    recorded_at: str | None = None
    notes: str | None = None
    status: RecordingStatus = "ingested"
    ingested_at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class Event(Record):
    """One thing that happened (PREMIS-style): type, when, who (person or software@version), on what."""

    KIND: ClassVar[str] = "event"
    TABLE: ClassVar[str] = "events"

    event_id: str
    type: str
    agent: str
    object_ids: tuple[str, ...]
    outcome: EventOutcome
    at: datetime = field(default_factory=utc_now)
    detail: str | None = None
    flow_run_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConsentRecord(Record):
    """One consent statement (append-only). A change or revocation is a new record that supersedes the old.

    ``previous_sha256`` is the ``record_sha256`` of the bearer's record before this one, so the records of a
    bearer form a tamper-evident chain; ``record_sha256`` covers every other field.
    """

    KIND: ClassVar[str] = "consent"
    TABLE: ClassVar[str] = "consents"

    consent_id: str
    bearer_id: str
    bearer_status: BearerStatus
    grantor_type: GrantorType
    grantor_id: str
    scopes: tuple[str, ...]
    valid_from: datetime
    record_sha256: str = ""
    supersedes_id: str | None = None
    previous_sha256: str | None = None
    custodians: tuple[str, ...] = ()
    tk_labels: tuple[str, ...] = ()
    excluded_recordings: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    valid_until: datetime | None = None
    method: str | None = None
    consent_language: str | None = None
    evidence_sha256: str | None = None
    disclosure_text: str | None = None
    credit_line: str | None = None
    reason: str | None = None
    status: ConsentStatus = "active"
    recorded_at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class VoiceModelVersion(Record):
    """A registered voice-model version with its lineage (base model, dataset manifest, consent)."""

    KIND: ClassVar[str] = "voice_model_version"
    TABLE: ClassVar[str] = "models"

    model_id: str
    bearer_id: str
    version: int
    backend: str
    dataset_manifest_sha256: str
    consent_id: str
    artifact_uri: str
    artifact_sha256: str
    base_model: str | None = None
    base_model_sha256: str | None = None
    hyperparameters: str | None = None
    metrics: str | None = None
    status: ModelStatus = "candidate"
    model_card_uri: str | None = None
    created_at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class Exhibit(Record):
    """A registered exhibit: where it plays, to whom and why, which bearers it may ask for, its token's hash.

    ``bearer_ids`` empty means any bearer whose consent allows the exhibit's audience and purpose.
    ``preapprovals`` is JSON: ``[{"bearer_id", "by", "at"}]``, bearers whose own transcribed words a curator
    approved for this exhibit in one step.
    """

    KIND: ClassVar[str] = "exhibit"
    TABLE: ClassVar[str] = "exhibits"

    exhibit_id: str
    venue: str
    audience: str
    purpose: str
    token_sha256: str
    valid_from: datetime = field(default_factory=utc_now)
    valid_until: datetime | None = None
    bearer_ids: tuple[str, ...] = ()
    loudness_lufs: float = -16.0
    status: ExhibitStatus = "active"
    created_at: datetime = field(default_factory=utc_now)
    preapprovals: str = "[]"


@dataclass(frozen=True, slots=True)
class ExhibitRequest(Record):
    """One requested text of an exhibit's request, and where it stands.

    ``approvals`` is JSON: a list of ``{"by", "role", "at"}``; ``approvals_needed`` is 2 where the bearer's
    labels or community protocol ask for a community reviewer beside the curator.
    """

    KIND: ClassVar[str] = "exhibit_request"
    TABLE: ClassVar[str] = "exhibit_requests"

    request_id: str
    item: int
    exhibit_id: str
    bearer_id: str
    text: str
    text_sha256: str
    format: str
    state: RequestState = "awaiting_approval"
    reason: str | None = None
    approvals: str = "[]"
    approvals_needed: int = 1
    clip_id: str | None = None
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class Segment(Record):
    """An aligned utterance, on the original's timeline; ``phones`` is JSON of its word and phone intervals.

    ``flags`` name what keeps it from training until a person has looked: out-of-vocabulary words, phone
    durations out of range, a log-likelihood far under the collection's.
    """

    KIND: ClassVar[str] = "segment"
    TABLE: ClassVar[str] = "segments"

    segment_id: str
    recording_id: str
    start_s: float
    end_s: float
    text: str
    phones: str | None = None
    dialect: str | None = None
    lexicon_version: str | None = None
    score: float | None = None
    flags: tuple[str, ...] = ()
    created_at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class Clip(Record):
    """A generated exhibit clip; ``watermark_payload`` is what its watermark carries."""

    KIND: ClassVar[str] = "clip"
    TABLE: ClassVar[str] = "clips"

    clip_id: str
    exhibit_id: str
    model_id: str
    text_sha256: str
    watermark_payload: str
    uri: str
    sha256: str
    status: ClipStatus = "ready"
    created_at: datetime = field(default_factory=utc_now)
    request_id: str | None = None
    bearer_id: str | None = None
    format: str | None = None
    duration_s: float | None = None
    cache_key: str | None = None
    consent_ids: tuple[str, ...] = ()
    approvals: str | None = None
    credit_line: str | None = None
    disclosure_text: str | None = None
    manifest_uri: str | None = None


@dataclass(frozen=True, slots=True)
class Derivative(Record):
    """A prepared working copy of an original: where it is, what made it (``params_hash``), how good it is."""

    KIND: ClassVar[str] = "derivative"
    TABLE: ClassVar[str] = "derivatives"

    recording_id: str
    params_hash: str
    uri: str
    sample_rate: int
    duration_s: float
    gate: GateResult
    software: str
    snr_db: float | None = None
    clipping_ratio: float | None = None
    speech_ratio: float | None = None
    loudness_lufs: float | None = None
    metrics: str | None = None
    gate_reasons: tuple[str, ...] = ()
    created_at: datetime = field(default_factory=utc_now)
