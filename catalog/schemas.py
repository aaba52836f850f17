"""Explicit Arrow schemas of the catalog's Delta Lake tables (see DESIGN.md, "Catalog").

Free-form structures (gate reasons, metrics, hyper-parameters, event detail) are JSON text columns: Delta
schema evolution of nested structs is brittle, and curators read them with DuckDB's JSON functions.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")
STR_LIST = pa.list_(pa.string())


def _schema(*fields: tuple[str, pa.DataType, bool]) -> pa.Schema:
    return pa.schema([pa.field(name, dtype, nullable=nullable) for name, dtype, nullable in fields])


BEARERS = _schema(
    ("bearer_id", pa.string(), False),
    ("community_ids", STR_LIST, True),
    ("dialect", pa.string(), True),
    ("languages", STR_LIST, True),
    ("status", pa.string(), False),
    ("created_at", TS, False),
)

RECORDINGS = _schema(
    ("recording_id", pa.string(), False),
    ("bearer_id", pa.string(), False),
    ("collection", pa.string(), False),
    ("title", pa.string(), True),
    ("source_uri", pa.string(), False),
    ("original_uri", pa.string(), False),
    ("format", pa.string(), False),
    ("codec", pa.string(), False),
    ("sample_rate", pa.int32(), False),
    ("bit_depth", pa.int32(), True),
    ("channels", pa.int32(), False),
    ("duration_s", pa.float64(), False),
    ("size_bytes", pa.int64(), False),
    ("transcript", pa.string(), True),
    ("language", pa.string(), True),
    ("dialect", pa.string(), True),
    ("tk_labels", STR_LIST, True),
    ("recorded_at", pa.string(), True),
    ("notes", pa.string(), True),
    ("status", pa.string(), False),
    ("ingested_at", TS, False),
)

DERIVATIVES = _schema(
    ("recording_id", pa.string(), False),
    ("params_hash", pa.string(), False),
    ("uri", pa.string(), False),
    ("sample_rate", pa.int32(), False),
    ("duration_s", pa.float64(), False),
    ("snr_db", pa.float64(), True),
    ("clipping_ratio", pa.float64(), True),
    ("speech_ratio", pa.float64(), True),
    ("loudness_lufs", pa.float64(), True),
    ("metrics", pa.string(), True),
    ("gate", pa.string(), False),
    ("gate_reasons", STR_LIST, True),
    ("software", pa.string(), False),
    ("created_at", TS, False),
)

SEGMENTS = _schema(
    ("segment_id", pa.string(), False),
    ("recording_id", pa.string(), False),
    ("start_s", pa.float64(), False),
    ("end_s", pa.float64(), False),
    ("text", pa.string(), False),
    ("phones", pa.string(), True),
    ("dialect", pa.string(), True),
    ("lexicon_version", pa.string(), True),
    ("score", pa.float64(), True),
    ("flags", STR_LIST, True),
    ("created_at", TS, False),
)

CONSENTS = _schema(
    ("consent_id", pa.string(), False),
    ("supersedes_id", pa.string(), True),
    ("previous_sha256", pa.string(), True),
    ("record_sha256", pa.string(), False),
    ("bearer_id", pa.string(), False),
    ("bearer_status", pa.string(), False),
    ("grantor_type", pa.string(), False),
    ("grantor_id", pa.string(), False),
    ("custodians", STR_LIST, True),
    ("scopes", STR_LIST, False),
    ("tk_labels", STR_LIST, True),
    ("excluded_recordings", STR_LIST, True),
    ("audiences", STR_LIST, True),
    ("valid_from", TS, False),
    ("valid_until", TS, True),
    ("method", pa.string(), True),
    ("consent_language", pa.string(), True),
    ("evidence_sha256", pa.string(), True),
    ("disclosure_text", pa.string(), True),
    ("credit_line", pa.string(), True),
    ("reason", pa.string(), True),
    ("status", pa.string(), False),
    ("recorded_at", TS, False),
)

MODELS = _schema(
    ("model_id", pa.string(), False),
    ("bearer_id", pa.string(), False),
    ("version", pa.int32(), False),
    ("backend", pa.string(), False),
    ("base_model", pa.string(), True),
    ("base_model_sha256", pa.string(), True),
    ("dataset_manifest_sha256", pa.string(), False),
    ("consent_id", pa.string(), False),
    ("hyperparameters", pa.string(), True),
    ("metrics", pa.string(), True),
    ("artifact_uri", pa.string(), False),
    ("artifact_sha256", pa.string(), False),
    ("status", pa.string(), False),
    ("model_card_uri", pa.string(), True),
    ("created_at", TS, False),
)

# Columns added after a table's first release are nullable: Catalog.init adds them to older archives' tables.
EXHIBITS = _schema(
    ("exhibit_id", pa.string(), False),
    ("venue", pa.string(), False),
    ("audience", pa.string(), False),
    ("purpose", pa.string(), False),
    ("token_sha256", pa.string(), False),
    ("valid_from", TS, False),
    ("valid_until", TS, True),
    ("bearer_ids", STR_LIST, True),
    ("loudness_lufs", pa.float64(), True),
    ("status", pa.string(), True),
    ("created_at", TS, True),
    ("preapprovals", pa.string(), True),
)

EXHIBIT_REQUESTS = _schema(
    ("request_id", pa.string(), False),
    ("item", pa.int32(), False),
    ("exhibit_id", pa.string(), False),
    ("bearer_id", pa.string(), False),
    ("text", pa.string(), False),
    ("text_sha256", pa.string(), False),
    ("format", pa.string(), False),
    ("state", pa.string(), False),
    ("reason", pa.string(), True),
    ("approvals", pa.string(), True),
    ("approvals_needed", pa.int32(), False),
    ("clip_id", pa.string(), True),
    ("created_at", TS, False),
    ("updated_at", TS, False),
)

CLIPS = _schema(
    ("clip_id", pa.string(), False),
    ("exhibit_id", pa.string(), False),
    ("model_id", pa.string(), False),
    ("text_sha256", pa.string(), False),
    ("watermark_payload", pa.string(), False),
    ("uri", pa.string(), False),
    ("sha256", pa.string(), False),
    ("status", pa.string(), False),
    ("created_at", TS, False),
    ("request_id", pa.string(), True),
    ("bearer_id", pa.string(), True),
    ("format", pa.string(), True),
    ("duration_s", pa.float64(), True),
    ("cache_key", pa.string(), True),
    ("consent_ids", STR_LIST, True),
    ("approvals", pa.string(), True),
    ("credit_line", pa.string(), True),
    ("disclosure_text", pa.string(), True),
    ("manifest_uri", pa.string(), True),
)

EVENTS = _schema(
    ("event_id", pa.string(), False),
    ("type", pa.string(), False),
    ("at", TS, False),
    ("agent", pa.string(), False),
    ("object_ids", STR_LIST, False),
    ("outcome", pa.string(), False),
    ("detail", pa.string(), True),
    ("flow_run_id", pa.string(), True),
)

TABLES: dict[str, pa.Schema] = {
    "bearers": BEARERS,
    "recordings": RECORDINGS,
    "derivatives": DERIVATIVES,
    "segments": SEGMENTS,
    "consents": CONSENTS,
    "models": MODELS,
    "exhibits": EXHIBITS,
    "exhibit_requests": EXHIBIT_REQUESTS,
    "clips": CLIPS,
    "events": EVENTS,
}
