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
from flows.train import base_train, train
from heirloom.errors import HeirloomError
from heirloom.settings import archive_uri
from tasks.demo_collection import build_demo_collection, seed_demo_consents
from voice_models.dataset import build_dataset

DEMO_COLLECTION = "demo"
DEMO_BASE = "demo-tiny"
# seconds on a CPU: the demo shows the whole path (base, fine-tune, evaluation, registry), not a usable voice
DEMO_TRAINING = {"preset": "tiny", "steps": 10, "checkpoint_every": 10}


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


def _voice_models(archive: str) -> dict[str, Any]:
    """A tiny base on the demo's consenting voices, then a tiny model for each bearer who may have one."""
    cat = catalog(archive)
    try:
        base = base_train(DEMO_BASE, archive=archive, hyperparameters=DEMO_TRAINING)
    except HeirloomError as e:
        return {"base": None, "error": str(e), "models": [], "skipped": {}}
    models, skipped = [], {}
    for bearer in sorted(r["bearer_id"] for r in cat.read("bearers").to_pylist()):
        if not build_dataset(cat, bearer).items:
            skipped[bearer] = "no eligible segments (consent, gate or alignment flags)"
            continue
        try:
            models.append(train(bearer, DEMO_BASE, archive=archive, hyperparameters=DEMO_TRAINING)["model"])
        except HeirloomError as e:
            skipped[bearer] = str(e)
    return {"base": base["uri"], "speakers": base["speakers"], "models": models, "skipped": skipped}


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
        "voice": _voice_models(archive),
        "audit": audit(archive=archive),
    }
