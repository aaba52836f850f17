"""The ``prepare`` flow: a working copy, metrics and a quality gate for each original still without one."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from flows._shared import catalog, flow_run_id, storage
from heirloom.settings import archive_uri
from tasks.prepare import PrepareParams, commit_derivatives, pending_recordings, prepare_recording


def _pending(archive: str, params_hash: str, collection: str | None, recording: str | None) -> list[dict[str, Any]]:
    return pending_recordings(catalog(archive), params_hash, collection=collection, recording_id=recording)


def _prepare(archive: str, row: dict[str, Any], params: PrepareParams, run_id: str | None):
    return prepare_recording(storage(archive), row, params, flow_run_id=run_id)


def _commit(archive: str, made: list) -> int:
    return commit_derivatives(catalog(archive), made)


pending = task(name="pending-recordings", cache_policy=NO_CACHE)(_pending)
prepare_one = task(name="prepare-recording", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)(_prepare)
commit = task(name="commit-derivatives", retries=3, retry_delay_seconds=1, cache_policy=NO_CACHE)(_commit)


@flow(name="prepare", task_runner=ThreadPoolTaskRunner(max_workers=2), validate_parameters=False)
def prepare(
    collection: str | None = None,
    recording: str | None = None,
    archive: str | None = None,
    params: PrepareParams | None = None,
) -> dict[str, Any]:
    archive = archive_uri(archive)
    params = params or PrepareParams()
    run_id = flow_run_id()
    rows = pending(archive, params.params_hash(), collection, recording)
    futures = [prepare_one.submit(archive, row, params, run_id) for row in rows]
    made, failed = [], []
    for row, fut in zip(rows, futures, strict=True):
        fut.wait()
        if fut.state.is_completed():
            made.append(fut.result())
        else:
            failed.append({"recording_id": row["recording_id"], "error": str(fut.state.result(raise_on_failure=False))})
    commit(archive, made)
    return {
        "archive": archive,
        "params_hash": params.params_hash(),
        "prepared": [
            {
                "recording_id": d.recording_id,
                "gate": d.gate,
                "reasons": list(d.gate_reasons),
                "snr_db": d.snr_db,
                "loudness_lufs": d.loudness_lufs,
                "uri": d.uri,
            }
            for d, _ in made
        ],
        "failed": failed,
    }
