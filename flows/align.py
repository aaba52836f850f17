"""The ``align`` flow: dialect-aware forced alignment of transcripts to working copies, as segments."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows._shared import catalog, flow_run_id, storage
from heirloom.settings import archive_uri
from tasks.align import align_collection, commit, jobs, pool, segments


def _align(
    archive: str, collection: str | None, recording: str | None, run_id: str | None, backend: str = "gmm"
) -> dict[str, Any]:
    store, cat = storage(archive), catalog(archive)
    job_list, skipped = jobs(cat, store, collection=collection, recording_id=recording)
    if not job_list:
        return {"recordings": [], "skipped": skipped, "lexicons": {}, "backend": backend}
    others = pool(cat, store, {j.recording_id for j in job_list})
    results, lexicons, said, training = align_collection(store, job_list, pool=others, backend=backend)
    rows = segments(results, lexicons, said, training)
    report = commit(cat, store, results, rows, said, training, flow_run_id=run_id)
    lexicon_names = {d: lex.name for d, lex in lexicons.items()}
    return {"recordings": report, "skipped": skipped, "lexicons": lexicon_names, "backend": backend}


align_task = task(name="align-collection", cache_policy=NO_CACHE)(_align)


@flow(name="align", validate_parameters=False)
def align(
    collection: str | None = None, recording: str | None = None, archive: str | None = None, backend: str = "gmm"
) -> dict[str, Any]:
    archive = archive_uri(archive)
    return {"archive": archive, **align_task(archive, collection, recording, flow_run_id(), backend)}
