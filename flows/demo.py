"""The ``demo`` flow: build the demo collection in the archive, then run every stage that exists."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows._shared import catalog, storage
from flows.align import align
from flows.audit import audit
from flows.fixity import fixity
from flows.ingest import ingest
from flows.prepare import prepare
from heirloom.settings import archive_uri
from tasks.demo_collection import build_demo_collection, seed_demo_consents

DEMO_COLLECTION = "demo"


def _build(archive: str) -> str:
    store = storage(archive)
    prefix = f"incoming/{DEMO_COLLECTION}"
    bearers = build_demo_collection(store, prefix)
    cat = catalog(archive)
    cat.init()
    cat.insert_new("bearers", bearers, key="bearer_id")
    return store.uri(prefix)


def _consents(archive: str) -> list[dict[str, Any]]:
    records = seed_demo_consents(catalog(archive), storage(archive))
    return [{"bearer_id": r.bearer_id, "consent_id": r.consent_id, "scopes": list(r.scopes)} for r in records]


build = task(name="build-demo-collection", cache_policy=NO_CACHE)(_build)
consents = task(name="seed-demo-consents", cache_policy=NO_CACHE)(_consents)


@flow(name="demo", validate_parameters=False)
def demo(archive: str | None = None) -> dict[str, Any]:
    archive = archive_uri(archive)
    source = build(archive)
    return {
        "archive": archive,
        "ingest": ingest(source=source, collection=DEMO_COLLECTION, archive=archive),
        "prepare": prepare(collection=DEMO_COLLECTION, archive=archive),
        "align": align(collection=DEMO_COLLECTION, archive=archive),
        "fixity": fixity(archive=archive),
        "consents": consents(archive),
        "audit": audit(archive=archive),
    }
