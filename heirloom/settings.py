"""Typed settings, grouped by section and read from the environment when asked for, never at import.

- ``HEIRLOOM_ARCHIVE``: the archive root, a directory path or ``s3://bucket/prefix`` (default ``./archive``).
- ``HEIRLOOM_STORAGE_*``: how large objects are streamed (see :class:`StorageSettings`).
- ``AWS_*``: the usual S3 connection variables (endpoint, credentials, region), as boto3 reads them.

A ``HEIRLOOM_STORAGE_*`` variable that names no setting is an error, so a typo does not pass unnoticed.
"""

from __future__ import annotations

import os

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from heirloom.errors import SettingsError


class StorageSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEIRLOOM_STORAGE_", extra="forbid", frozen=True)

    chunk_mb: int = Field(default=8, gt=0, le=512, description="Streaming block and multipart part size (MiB).")
    multipart_threshold_mb: int = Field(
        default=16, gt=0, description="Objects larger than this are uploaded to S3 in parts (MiB)."
    )
    max_concurrency: int = Field(default=4, gt=0, le=64, description="Parallel part uploads per object.")


class S3Settings(BaseSettings):
    """The standard AWS variables; path-style addressing is always used (SeaweedFS, MinIO, Ceph)."""

    model_config = SettingsConfigDict(env_prefix="AWS_", extra="ignore", frozen=True)

    endpoint_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:8333 for a local server")
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    region: str | None = None
    default_region: str | None = None

    @property
    def region_name(self) -> str:
        return self.region or self.default_region or "us-east-1"


class ArchiveSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEIRLOOM_", extra="ignore", frozen=True)

    archive: str = Field(default="./archive", description="Archive root: a directory or s3://bucket/prefix.")


def _reject_unknown(prefix: str, model: type[BaseSettings]) -> None:
    known = {f"{prefix}{name}".upper() for name in model.model_fields}
    unknown = sorted(k for k in os.environ if k.upper().startswith(prefix) and k.upper() not in known)
    if unknown:
        raise SettingsError(
            f"unknown setting(s) {', '.join(unknown)}; the {prefix}* settings are: {', '.join(sorted(known))}"
        )


def storage_settings() -> StorageSettings:
    _reject_unknown("HEIRLOOM_STORAGE_", StorageSettings)
    try:
        return StorageSettings()
    except ValidationError as e:
        raise SettingsError(f"bad HEIRLOOM_STORAGE_* setting: {e}") from e


def s3_settings() -> S3Settings:
    return S3Settings()


def archive_uri(override: str | None = None) -> str:
    """The archive root: ``override`` when given (a CLI flag), else ``HEIRLOOM_ARCHIVE``, else ``./archive``."""
    uri = override or ArchiveSettings().archive
    if not uri.strip():
        raise SettingsError("HEIRLOOM_ARCHIVE is empty; set it to a directory or s3://bucket/prefix")
    return uri


class ExhibitSettings(BaseSettings):
    """The exhibit API's limits (``HEIRLOOM_EXHIBIT_*``); beyond them it answers 413 or 429."""

    model_config = SettingsConfigDict(env_prefix="HEIRLOOM_EXHIBIT_", extra="forbid", frozen=True)

    max_texts: int = Field(default=20, gt=0, le=500, description="Texts in one request.")
    max_chars: int = Field(default=600, gt=0, le=20_000, description="Characters in one text.")
    rate_per_minute: float = Field(default=120.0, gt=0, description="Requests per minute one exhibit may make.")
    rate_burst: int = Field(default=60, gt=0, description="Requests an exhibit may make at once before limiting.")
    generate_in_process: bool = Field(
        default=True, description="With no Prefect server, run the generate flow in a background thread."
    )


def exhibit_settings() -> ExhibitSettings:
    _reject_unknown("HEIRLOOM_EXHIBIT_", ExhibitSettings)
    try:
        return ExhibitSettings()
    except ValidationError as e:
        raise SettingsError(f"bad HEIRLOOM_EXHIBIT_* setting: {e}") from e


class ProvenanceSettings(BaseSettings):
    """Where the site's C2PA signing identity lives (``HEIRLOOM_PROVENANCE_DIR``)."""

    model_config = SettingsConfigDict(env_prefix="HEIRLOOM_PROVENANCE_", extra="forbid", frozen=True)

    dir: str | None = Field(default=None, description="Folder with signer.pem, signer.key and root.pem.")


def provenance_settings() -> ProvenanceSettings:
    _reject_unknown("HEIRLOOM_PROVENANCE_", ProvenanceSettings)
    return ProvenanceSettings()
