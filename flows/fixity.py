"""The ``fixity`` flow: re-hash every original and record a fixity-check event for each."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows._shared import catalog, flow_run_id, storage
from heirloom.settings import archive_uri
from tasks.fixity import check_fixity


def _check(archive: str, run_id: str | None) -> dict[str, Any]:
    return check_fixity(catalog(archive), storage(archive), flow_run_id=run_id).to_dict()


check = task(name="check-fixity", cache_policy=NO_CACHE)(_check)


@flow(name="fixity", validate_parameters=False)
def fixity(archive: str | None = None) -> dict[str, Any]:
    archive = archive_uri(archive)
    return {"archive": archive, **check(archive, flow_run_id())}
