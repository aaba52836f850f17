"""Where did this audio come from? The file's own Content Credentials if it kept them, else its watermark,
then the clip, exhibit, model, bearer, consent and approvals the catalog and the stored manifest hold.

This is what a curator runs on a clip found on social media: stripped, re-encoded, re-recorded. A payload
names a clip only when a clip of this archive carries it; one that passes the CRC but names no clip is
reported as unregistered, with its score, never as a clip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from catalog.storage import Storage
from catalog.tables import Catalog
from heirloom.errors import HeirloomError, ObjectNotFoundError
from tasks.audio import probe_audio, read_all
from tasks.provenance.credentials import MIME, read_credentials
from tasks.provenance.identity import SiteIdentity
from tasks.watermark import WatermarkKey, clips_with_payload, detect

_FORMAT_OF = {"wav": "wav", "wave": "wav", "flac": "flac", "mp3": "mp3", "m4a": "m4a", "mp4": "m4a", "aac": "m4a"}
_CODEC_FORMAT = {"opus": "opus", "mp3": "mp3", "flac": "flac", "aac": "m4a"}


def _format(path: Path) -> str | None:
    ext = path.suffix.lower().lstrip(".")
    if ext in ("opus", "ogg"):
        return "opus"
    if ext in _FORMAT_OF:
        return _FORMAT_OF[ext]
    info = probe_audio(path)
    return _CODEC_FORMAT.get(info.codec) or ("wav" if info.format.lower().startswith("wav") else None)


def _row(catalog: Catalog, table: str, column: str, value: str) -> dict[str, Any] | None:
    if not catalog.exists(table):
        return None
    return next((r for r in catalog.read(table).to_pylist() if r[column] == value), None)


def _stored_manifest(catalog: Catalog, archive: Storage, clip: dict[str, Any], root: bytes | None) -> dict[str, Any]:
    """The archive's copy of the clip's manifest, validated against the archived clip file."""
    if not clip.get("manifest_uri"):
        return {"present": False}
    try:
        manifest = archive.read_bytes(archive.key_of(clip["manifest_uri"]))
        data = archive.read_bytes(archive.key_of(clip["uri"]))
    except ObjectNotFoundError as e:
        return {"present": False, "error": str(e)}
    creds = read_credentials(data, clip["format"], manifest=manifest, root_pem=root)
    return {"present": True, "uri": clip["manifest_uri"], **(creds.to_dict() if creds else {"state": "Invalid"})}


def trace_file(
    path: Path,
    catalog: Catalog,
    archive: Storage,
    *,
    key: WatermarkKey | None,
    identity: SiteIdentity | None,
) -> dict[str, Any]:
    """Everything known about the audio in ``path`` (see the module's docstring), as one JSON-able document."""
    root = identity.root_pem if identity else None
    doc: dict[str, Any] = {"file": str(path), "credentials": None, "watermark": None, "clip": None}
    fmt = _format(path)
    if fmt in MIME:
        try:
            creds = read_credentials(path.read_bytes(), fmt, root_pem=root)
        except HeirloomError as e:
            doc["credentials"] = {"state": "Invalid", "failures": [str(e)]}
        else:
            doc["credentials"] = creds.to_dict() if creds else None
    payload = (doc["credentials"] or {}).get("watermark_payload")
    if key is not None:
        audio, rate = read_all(path)
        found = detect(audio, rate, key)
        doc["watermark"] = {"key": key.fingerprint, **found.to_dict()}
        if found.found and found.payload is not None:
            payload = found.payload.hex()
    if payload is None:
        doc["verdict"] = "no Content Credentials and no watermark of this site's key: heirloom did not make it, "
        doc["verdict"] += "or it was made under another key"
        return doc
    clips = clips_with_payload(catalog, payload) or []
    if not clips:
        doc["verdict"] = f"payload {payload} passes the check but names no clip of this archive: unregistered"
        return doc
    clip = clips[0]
    doc["clip"] = {k: v for k, v in clip.items() if k != "cache_key"}
    doc["exhibit"] = _row(catalog, "exhibits", "exhibit_id", clip["exhibit_id"])
    if doc["exhibit"]:
        doc["exhibit"].pop("token_sha256", None)
    doc["model"] = _row(catalog, "models", "model_id", clip["model_id"])
    doc["bearer_id"] = clip.get("bearer_id") or (doc["model"] or {}).get("bearer_id")
    doc["consents"] = [
        {k: c[k] for k in ("consent_id", "grantor_type", "grantor_id", "scopes", "status", "valid_from", "valid_until")}
        for c in catalog.read("consents").to_pylist()
        if c["consent_id"] in set(clip.get("consent_ids") or ())
    ]
    doc["approvals"] = json.loads(clip["approvals"]) if clip.get("approvals") else []
    doc["stored_manifest"] = _stored_manifest(catalog, archive, clip, root)
    doc["verdict"] = f"clip {clip['clip_id']} of exhibit {clip['exhibit_id']}, status {clip['status']}"
    return doc
