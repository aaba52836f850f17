"""The ``revoke`` and ``erase`` flows: carry out a withdrawal of consent, or a person's erasure."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows._shared import catalog, flow_run_id, storage
from heirloom.settings import archive_uri
from tasks.consent import carry_out, erase


def _revoke(archive: str, bearer_id: str, scopes: list[str], reason: str, run_id: str | None) -> dict[str, Any]:
    return carry_out(catalog(archive), storage(archive), bearer_id, scopes, reason, flow_run_id=run_id).to_dict()


def _erase(archive: str, bearer_id: str, reason: str, run_id: str | None) -> dict[str, Any]:
    return erase(catalog(archive), storage(archive), bearer_id, reason, flow_run_id=run_id).to_dict()


revoke_task = task(name="carry-out-revocation", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)(_revoke)
erase_task = task(name="erase-person", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)(_erase)


@flow(name="revoke", validate_parameters=False)
def revoke(bearer_id: str, scopes: list[str], reason: str, archive: str | None = None) -> dict[str, Any]:
    """Record the revocation, then retire, delete and purge everything made under the withdrawn scopes."""
    return revoke_task(archive_uri(archive), bearer_id, scopes, reason, flow_run_id())


@flow(name="erase", validate_parameters=False)
def erase_person(bearer_id: str, reason: str, archive: str | None = None) -> dict[str, Any]:
    """Erase a person's personal and derived data, keeping pseudonymous events that say it happened."""
    return erase_task(archive_uri(archive), bearer_id, reason, flow_run_id())
