"""Archive fixtures for consent tests: bearers, recordings, and registered model versions and clips whose
artefacts really exist in storage (clips are spoken by espeak-ng, marked and signed as generation does)."""

from __future__ import annotations

import hashlib
import json
import secrets
import tempfile
import uuid
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from catalog.manifests import Bearer, Clip, Exhibit, Recording, VoiceModelVersion
from catalog.storage import Storage
from catalog.tables import Catalog
from tasks.consent.audit import DATASET_MANIFEST
from tasks.demo_collection import DemoVoice, synthesize
from tasks.generation.encode import encode
from tasks.generation.render import finish
from tasks.provenance import SiteIdentity, keygen, sign_clip
from tasks.watermark import WatermarkKey


def add_bearer(cat: Catalog, bearer_id: str, status: str = "living", communities: tuple[str, ...] = ("kil",)) -> None:
    cat.init()
    cat.insert_new("bearers", [Bearer(bearer_id=bearer_id, status=status, community_ids=communities)], key="bearer_id")  # type: ignore[arg-type]


def add_recording(
    cat: Catalog, store: Storage, bearer_id: str, labels: tuple[str, ...] = (), language: str | None = None
) -> str:
    data = uuid.uuid4().bytes * 100
    rid = hashlib.sha256(data).hexdigest()
    store.create(f"originals/{rid[:2]}/{rid}.wav", data)
    cat.append(
        "recordings",
        [
            Recording(
                recording_id=rid,
                bearer_id=bearer_id,
                collection="c1",
                source_uri=f"/in/{rid[:6]}.wav",
                original_uri=store.uri(f"originals/{rid[:2]}/{rid}.wav"),
                format="wav",
                codec="pcm_16",
                sample_rate=16000,
                channels=1,
                duration_s=1.0,
                size_bytes=len(data),
                tk_labels=labels,
                language=language,
            )
        ],
    )
    return rid


def add_model(
    cat: Catalog,
    store: Storage,
    bearer_id: str,
    consent_id: str,
    recordings: list[str],
    version: int = 1,
    created_at: datetime | None = None,
) -> VoiceModelVersion:
    base = f"models/{bearer_id}/v{version}"
    manifest = json.dumps({"segments": [{"segment_id": f"{r[:8]}-0", "recording_id": r} for r in recordings]}).encode()
    store.put(f"{base}/{DATASET_MANIFEST}", manifest)
    weights = store.put(f"{base}/generator.pt", uuid.uuid4().bytes * 64)
    store.put(f"{base}/model_card.md", b"# model card\n")
    extra = {"created_at": created_at} if created_at else {}
    model = VoiceModelVersion(
        model_id=f"m-{bearer_id}-v{version}",
        bearer_id=bearer_id,
        version=version,
        backend="vits",
        dataset_manifest_sha256=hashlib.sha256(manifest).hexdigest(),
        consent_id=consent_id,
        artifact_uri=store.uri(f"{base}/generator.pt"),
        artifact_sha256=weights.sha256 or "",
        status="active",
        model_card_uri=store.uri(f"{base}/model_card.md"),
        **extra,
    )
    cat.append("models", [model])
    return model


def add_exhibit(
    cat: Catalog, exhibit_id: str = "x-hall", audience: str = "general_public", purpose: str = "exhibit"
) -> None:
    token = hashlib.sha256(exhibit_id.encode()).hexdigest()
    cat.append(
        "exhibits",
        [Exhibit(exhibit_id=exhibit_id, venue="Hall", audience=audience, purpose=purpose, token_sha256=token)],
    )


TEST_KEY = WatermarkKey(secret=bytes(range(32)))
CLIP_TEXT = "The water is wide, I cannot get over, and neither have I wings to fly."


@lru_cache(maxsize=1)
def test_identity() -> SiteIdentity:
    """One signing identity for the test session (keygen is quick, but every clip of a test should share it)."""
    return keygen(Path(tempfile.mkdtemp(prefix="heirloom-test-identity-")) / "identity")


def add_clip(cat: Catalog, store: Storage, model_id: str, exhibit_id: str = "x-hall") -> Clip:
    """A clip made as the generate stage makes one (espeak-ng speaking for the model): marked with its
    payload under ``TEST_KEY``, signed with :func:`test_identity`, from an approved request."""
    payload = secrets.token_bytes(4)
    clip_id = f"clip-{payload.hex()}"
    with tempfile.TemporaryDirectory() as tmp:
        audio, rate = synthesize(
            DemoVoice("b-1", "espeak-ng", "en-gb-scotland", "en-gb-scotland"), CLIP_TEXT, Path(tmp) / "x.wav"
        )
        rendered = finish(audio, rate, payload=payload, key=TEST_KEY, target_lufs=-16)
        path = encode(rendered.audio, rendered.rate, "wav", Path(tmp) / f"{clip_id}.wav", metadata={})
        approvals = [{"by": "cur-1", "role": "curator", "at": "2026-01-01T00:00:00+00:00"}]
        provenance = {
            "clip_id": clip_id, "exhibit_id": exhibit_id, "model_id": model_id, "watermark": {"payload": payload.hex()},
            "approvals": approvals,
        }  # fmt: skip
        sign_clip(path, "wav", provenance, test_identity())
        info = store.put(f"exhibits/{exhibit_id}/{clip_id}.wav", path.read_bytes())
    clip = Clip(
        clip_id=clip_id,
        exhibit_id=exhibit_id,
        model_id=model_id,
        text_sha256=hashlib.sha256(CLIP_TEXT.encode()).hexdigest(),
        watermark_payload=payload.hex(),
        uri=store.uri(f"exhibits/{exhibit_id}/{clip_id}.wav"),
        sha256=info.sha256 or "",
        request_id="rq-factory",
        format="wav",
        approvals=json.dumps(approvals),
    )
    cat.append("clips", [clip])
    return clip
