"""The ``ingest`` flow: plan the collection, process files in parallel, commit each batch to the catalog."""

from __future__ import annotations

from typing import Any

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner

from catalog.storage import LocalStorage
from flows._shared import catalog, flow_run_id, storage
from heirloom.settings import archive_uri
from tasks.ingest import IngestItem, ItemResult, commit_results, plan_ingest, process_item, quarantine, summarize


def _prepare_archive(archive: str) -> set[str]:
    """Create missing tables, drop temp files a killed run left, and return the registered bearers."""
    cat = catalog(archive)
    cat.init()
    store = storage(archive)
    if isinstance(store, LocalStorage):
        store.clean_temp()
    return {r["bearer_id"] for r in cat.read("bearers", columns=["bearer_id"]).to_pylist()}


def _plan(source: str, collection: str, bearers: set[str]) -> list[IngestItem]:
    return plan_ingest(storage(source), collection, bearers)


def _process(item: IngestItem, source: str, archive: str, collection: str, run_id: str | None) -> ItemResult:
    return process_item(
        item, source=storage(source), archive=storage(archive), collection=collection, flow_run_id=run_id
    )


def _settle(
    item: IngestItem, future: PrefectFuture, source: str, archive: str, collection: str, run_id: str | None
) -> ItemResult:
    """The item's result, or, when its task failed even after retries, a quarantine note saying why."""
    if future.state.is_completed():
        return future.result()
    error = future.state.result(raise_on_failure=False)
    src = storage(source)
    return quarantine(
        item,
        f"ingest failed unexpectedly after retries: {error!r}",
        source=src,
        archive=storage(archive),
        collection=collection,
        src_uri=src.uri(item.file) if item.exists else item.file,
        flow_run_id=run_id,
    )


def _commit(archive: str, results: list[ItemResult], run_id: str | None) -> list[ItemResult]:
    return commit_results(catalog(archive), results, flow_run_id=run_id)


prepare_archive = task(name="prepare-archive", retries=2, cache_policy=NO_CACHE)(_prepare_archive)
plan = task(name="plan-ingest", retries=2, cache_policy=NO_CACHE)(_plan)
process = task(name="ingest-file", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)(_process)
commit = task(name="commit-catalog", retries=3, retry_delay_seconds=1, cache_policy=NO_CACHE)(_commit)


@flow(name="ingest", task_runner=ThreadPoolTaskRunner(max_workers=4), validate_parameters=False)
def ingest(source: str, collection: str, archive: str | None = None, batch_size: int = 100) -> dict[str, Any]:
    """Ingest the recordings under ``source`` (a folder or s3:// prefix with manifest.csv) as ``collection``."""
    archive = archive_uri(archive)
    run_id = flow_run_id()
    bearers = prepare_archive(archive)
    items = plan(source, collection, bearers)
    results: list[ItemResult] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        futures = process.map(chunk, unmapped(source), unmapped(archive), unmapped(collection), unmapped(run_id))
        futures.wait()
        done = [_settle(i, f, source, archive, collection, run_id) for i, f in zip(chunk, futures, strict=True)]
        results += commit(archive, done, run_id)
    return summarize(results, collection=collection, source=source, archive=archive, flow_run_id=run_id)
