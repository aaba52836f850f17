"""A bearer's active voice, ready to speak exhibit texts: the model fetched and verified, its phones from the
bearer's dialect lexicon, its judge (the ASR of the bearer's language) and the WER it scored when evaluated.

Only an ``active`` version is ever used (a candidate never speaks to the public); the model's files are
fetched into a local folder and their SHA-256 checked against the registry.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import soxr

from catalog.manifests import VoiceModelVersion
from catalog.storage import Storage, sha256_file
from catalog.tables import Catalog
from heirloom.errors import VoiceModelError
from tasks.generation import Voice
from voice_models.backend import get_backend
from voice_models.evaluation import RATE_HZ, recognizer_for
from voice_models.phones import text_words
from voice_models.registry import versions
from voice_models.training import download_prefix


def active_model(catalog: Catalog, bearer_id: str) -> VoiceModelVersion:
    active = [m for m in versions(catalog, bearer_id) if m.status == "active"]
    if not active:
        raise VoiceModelError(
            f"bearer {bearer_id} has no active voice model; train one (`heirloom train {bearer_id}`) and have a "
            "curator promote it (`heirloom models promote`)"
        )
    return max(active, key=lambda m: m.version)


def _dialect_and_language(catalog: Catalog, bearer_id: str) -> tuple[str, str | None]:
    bearer = next((b for b in catalog.read("bearers").to_pylist() if b["bearer_id"] == bearer_id), None)
    recordings = [r for r in catalog.read("recordings").to_pylist() if r["bearer_id"] == bearer_id]
    dialects = Counter(r["dialect"] for r in recordings if r["dialect"])
    languages = Counter(r["language"] for r in recordings if r["language"])
    dialect = (bearer or {}).get("dialect") or (dialects.most_common(1)[0][0] if dialects else None)
    if dialect is None:
        raise VoiceModelError(f"bearer {bearer_id} has no dialect; set one with `heirloom bearers add --dialect`")
    language = languages.most_common(1)[0][0] if languages else dialect.split("-")[0]
    return dialect, language


def _model_dir(storage: Storage, artifact_uri: str, artifact_sha256: str) -> Path:
    folder, name = storage.key_of(artifact_uri).rsplit("/", 1)
    into = Path(tempfile.mkdtemp(prefix="heirloom-voice-"))
    download_prefix(storage, folder + "/", into)
    weights = into / name
    if not weights.exists() or sha256_file(weights) != artifact_sha256:
        raise VoiceModelError(f"the weights at {artifact_uri} do not match the registry's SHA-256; re-train the model")
    return into


def load_voice(catalog: Catalog, storage: Storage, bearer_id: str) -> Voice:
    """The bearer's active model as a :class:`tasks.generation.Voice`."""
    return load_version(catalog, storage, active_model(catalog, bearer_id))


def load_version(catalog: Catalog, storage: Storage, model: VoiceModelVersion) -> Voice:
    """One registered version as a :class:`tasks.generation.Voice`, whatever its status: exhibits get only
    :func:`load_voice`'s active one; this is for a curator (or the demo) hearing a candidate."""
    import torch

    bearer_id = model.bearer_id
    backend = get_backend(model.backend)
    model_dir = _model_dir(storage, model.artifact_uri, model.artifact_sha256)
    dialect, language = _dialect_and_language(catalog, bearer_id)

    def synthesize(text: str, seed: int) -> tuple[np.ndarray, int]:
        torch.manual_seed(seed)  # VITS samples its durations and latents: another seed is another take
        return backend.synthesize(model_dir, text_words(storage, text, dialect, bearer_id), bearer_id)

    recognize = recognizer_for(language)
    transcribe = None
    if recognize is not None:

        def transcribe(audio: np.ndarray, rate: int, vocabulary: list[str]) -> str:
            x = audio if rate == RATE_HZ else soxr.resample(audio.astype(np.float32), rate, RATE_HZ)
            return recognize(np.asarray(x, dtype=np.float32), vocabulary)

    metrics = json.loads(model.metrics or "{}")
    return Voice(
        model_id=model.model_id,
        bearer_id=bearer_id,
        synthesize=synthesize,
        transcribe=transcribe,
        model_wer=metrics.get("wer"),
        settings={"backend": model.backend, "dialect": dialect},
    )
