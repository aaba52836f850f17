"""The ``generate`` flow: every queued exhibit text into a checked, watermarked, signed clip, or a failure
with its reason. Deployed to the ``gpu`` work pool; the same flow runs in-process on a CPU, and the exhibit
API starts it in the background when no Prefect server is configured."""

from __future__ import annotations

from collections import Counter
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from catalog.manifests import ExhibitRequest
from flows._shared import catalog, flow_run_id, storage
from heirloom.errors import HeirloomError
from heirloom.settings import archive_uri
from tasks.generation import Sign, Voice, fail_texts, generate_text, queued
from tasks.provenance import site_signer
from tasks.watermark import WatermarkKey, load_key
from voice_models.synthesis import load_voice


def _generate(
    archive: str, row: ExhibitRequest, voice: Voice, key: WatermarkKey, sign: Sign, run_id: str | None
) -> str:
    cat, store = catalog(archive), storage(archive)
    try:
        return generate_text(cat, store, row, voice=voice, key=key, sign=sign, flow_run_id=run_id).state
    except HeirloomError as e:
        return fail_texts(cat, [row], str(e))[0].state


generate_one = task(name="generate-text", cache_policy=NO_CACHE)(_generate)


@flow(name="generate", validate_parameters=False)
def generate(archive: str | None = None, request_id: str | None = None) -> dict[str, Any]:
    archive = archive_uri(archive)
    cat = catalog(archive)
    rows = queued(cat, request_id=request_id)
    try:
        key, sign = load_key(None), site_signer()
    except HeirloomError as e:
        fail_texts(cat, rows, f"the site cannot sign or mark clips: {e}")
        return {"archive": archive, "texts": len(rows), "states": {"failed": len(rows)}}
    voices: dict[str, Voice | str] = {}
    states: Counter[str] = Counter()
    for row in rows:
        if row.bearer_id not in voices:
            try:
                voices[row.bearer_id] = load_voice(cat, storage(archive), row.bearer_id)
            except HeirloomError as e:
                voices[row.bearer_id] = str(e)
        voice = voices[row.bearer_id]
        if isinstance(voice, str):
            states[fail_texts(cat, [row], voice)[0].state] += 1
            continue
        states[generate_one(archive, row, voice, key, sign, flow_run_id())] += 1
    return {"archive": archive, "texts": len(rows), "states": dict(states)}
