"""What the flows share: storage handles cached per process (boto3 clients are thread-safe and costly)."""

from __future__ import annotations

from functools import lru_cache

from catalog.storage import Storage, open_storage
from catalog.tables import Catalog


@lru_cache(maxsize=16)
def storage(uri: str) -> Storage:
    return open_storage(uri)


def catalog(archive: str) -> Catalog:
    return Catalog(storage(archive))


def flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return flow_run.id
