"""Content Credentials (C2PA, through c2pa-python) for generated clips: what is signed, and reading it back.

Each clip's manifest says it was created by a trained algorithm (IPTC digital source type
``trainedAlgorithmicMedia``), by which model, under which consent records and approvals, with which credit
line and disclosure, and binds it softly to its watermark payload, so a copy stripped of the manifest is
still found through the watermark. WAV, FLAC, MP3 and M4A carry the manifest inside; Ogg Opus gets it as a
sidecar (c2pa-python embeds nothing in Ogg). Either way the manifest bytes are also written beside the
signed file as ``<file>.c2pa``, which generation keeps in the archive, since any re-encode strips them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.manifests import CLIP_MEDIA_TYPES as MIME
from catalog.storage import Storage
from heirloom import __version__
from heirloom.errors import ProvenanceError
from tasks.provenance.identity import ALGORITHM, SiteIdentity, load_identity

SIDECAR_ONLY = frozenset({"opus"})
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
CLIP_ASSERTION = "org.heirloom.clip"
CONSENT_ASSERTION = "org.heirloom.consent"
APPROVAL_ASSERTION = "org.heirloom.approvals"
WATERMARK_ALGORITHM = "org.heirloom.watermark.v1"


def manifest_definition(provenance: dict[str, Any]) -> dict[str, Any]:
    """The C2PA manifest definition of a clip, from the provenance generation collected."""
    return {
        "claim_generator_info": [{"name": "heirloom", "version": __version__}],
        "title": provenance["clip_id"],
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": {"name": "heirloom", "version": __version__},
                            "parameters": {"model_id": provenance["model_id"]},
                        }
                    ]
                },
            },
            {
                "label": CLIP_ASSERTION,
                "data": {
                    k: provenance.get(k)
                    for k in ("clip_id", "exhibit_id", "request_id", "item", "bearer_id", "model_id", "text_sha256")
                }
                | {"credit_line": provenance.get("credit_line"), "disclosure_text": provenance.get("disclosure_text")},
            },
            {"label": CONSENT_ASSERTION, "data": {"consent_ids": provenance.get("consent_ids", [])}},
            {"label": APPROVAL_ASSERTION, "data": {"approvals": provenance.get("approvals", [])}},
            {
                "label": "c2pa.soft-binding",
                "data": {
                    "alg": WATERMARK_ALGORITHM,
                    "blocks": [{"scope": {}, "value": provenance["watermark"]["payload"]}],
                },
            },
        ],
    }


def sign_clip(path: Path, fmt: str, provenance: dict[str, Any], identity: SiteIdentity) -> Path:
    """Sign ``path`` in place (embedded) or beside it (Opus); the manifest bytes go to ``<path>.c2pa`` too."""
    import c2pa

    if fmt not in MIME:
        raise ProvenanceError(f"no Content Credentials for {fmt!r}; formats: {', '.join(MIME)}")
    try:
        signer = c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(ALGORITHM.encode(), identity.chain_pem, identity.key_pem, None)
        )
        builder = c2pa.Builder(manifest_definition(provenance))
        signed = path.with_name("signed-" + path.name)
        if fmt in SIDECAR_ONLY:
            builder.set_no_embed()
            with open(path, "rb") as src:
                manifest = builder.sign(signer, MIME[fmt], src, io.BytesIO())
        else:
            with open(path, "rb") as src, open(signed, "w+b") as dst:
                manifest = builder.sign(signer, MIME[fmt], src, dst)
            signed.replace(path)
    except c2pa.C2paError as e:
        raise ProvenanceError(f"signing {path.name} failed: {e}; check the identity in {identity.folder}") from e
    path.with_name(path.name + ".c2pa").write_bytes(manifest)
    return path


def site_signer(folder: Path | None = None):
    """A ``tasks.generation.Sign`` with the site's identity; raises :class:`ProvenanceError` when it has none."""
    identity = load_identity(folder)

    def sign(path: Path, fmt: str, provenance: dict[str, Any]) -> Path:
        return sign_clip(path, fmt, provenance, identity)

    return sign


def clip_credentials(
    archive: Storage, clip: dict[str, Any], *, root_pem: bytes | None, data: bytes | None = None
) -> Credentials | None:
    """A stored clip's credentials: those embedded in its file, else the archive's sidecar manifest for it
    (the only kind an Opus clip has). ``data`` is the file's bytes when the caller has read them already."""
    fmt = clip["format"] or "wav"
    if data is None:
        data = archive.read_bytes(archive.key_of(clip["uri"]))
    creds = read_credentials(data, fmt, root_pem=root_pem)
    if creds is None and clip.get("manifest_uri"):
        sidecar = archive.read_bytes(archive.key_of(clip["manifest_uri"]))
        creds = read_credentials(data, fmt, manifest=sidecar, root_pem=root_pem)
    return creds


@dataclass(frozen=True)
class Credentials:
    """What a file's (or a stored) manifest says, and whether it validates against the site's root."""

    state: str  # Trusted, Valid or Invalid, as the C2PA validator says
    embedded: bool
    clip: dict[str, Any]
    consent_ids: list[str]
    approvals: list[dict[str, Any]]
    watermark_payload: str | None
    digital_source_type: str | None
    failures: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "embedded": self.embedded,
            "clip": self.clip,
            "consent_ids": self.consent_ids,
            "approvals": self.approvals,
            "watermark_payload": self.watermark_payload,
            "digital_source_type": self.digital_source_type,
            "failures": self.failures,
        }


def read_credentials(
    data: bytes, fmt: str, *, manifest: bytes | None = None, root_pem: bytes | None = None
) -> Credentials | None:
    """The manifest in ``data`` (or the sidecar ``manifest`` for it), validated against ``root_pem``; None when
    the file carries none."""
    import c2pa

    if fmt not in MIME:
        raise ProvenanceError(f"cannot read Content Credentials of {fmt!r}; formats: {', '.join(MIME)}")
    if fmt in SIDECAR_ONLY and manifest is None:
        return None  # nothing can be embedded in Ogg: its manifest is the archive's sidecar
    settings: dict[str, Any] = {"verify": {"verify_trust": root_pem is not None}}
    if root_pem is not None:
        settings["trust"] = {"trust_anchors": root_pem.decode()}
    try:
        context = c2pa.Context.from_dict(settings)
        reader = c2pa.Reader.try_create(MIME[fmt], io.BytesIO(data), manifest, context=context)
    except c2pa.C2paError as e:
        return Credentials("Invalid", manifest is None, {}, [], [], None, None, [str(e)])
    if reader is None:
        return None
    with reader:
        active = reader.get_active_manifest() or {}
        state = reader.get_validation_state() or "Invalid"
        results = reader.get_validation_results() or {}
    assertions = {a["label"]: a.get("data", {}) for a in active.get("assertions", [])}
    actions = assertions.get("c2pa.actions.v2", {}).get("actions", [])
    binding = assertions.get("c2pa.soft-binding", {})
    blocks = binding.get("blocks", []) if binding.get("alg") == WATERMARK_ALGORITHM else []
    failures = [
        f"{f.get('code')}: {f.get('explanation', '')}" for f in results.get("activeManifest", {}).get("failure", [])
    ]
    return Credentials(
        state=state,
        embedded=manifest is None,
        clip=assertions.get(CLIP_ASSERTION, {}),
        consent_ids=assertions.get(CONSENT_ASSERTION, {}).get("consent_ids", []),
        approvals=assertions.get(APPROVAL_ASSERTION, {}).get("approvals", []),
        watermark_payload=blocks[0]["value"] if blocks else None,
        digital_source_type=next(
            (a.get("digitalSourceType") for a in actions if a.get("action") == "c2pa.created"), None
        ),
        failures=failures,
    )
