"""``heirloom models list|show|promote|retire``: the voice-model registry, for curators."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from flows.cli._common import ArchiveOpt, JsonOpt, print_json, reports_errors

app = typer.Typer(help="Voice-model versions: list, show, promote (through the gate), retire.", no_args_is_help=True)
ModelArg = Annotated[str, typer.Argument(help="A model id such as b-0042-v3.")]


def _catalog(archive: str | None):
    from catalog.tables import Catalog
    from heirloom.settings import archive_uri

    return Catalog.open(archive_uri(archive))


def _doc(model) -> dict:
    doc = asdict(model)
    for key in ("hyperparameters", "metrics"):
        doc[key] = json.loads(doc[key]) if doc[key] else None
    return doc


@app.command("list")
@reports_errors
def list_models(
    bearer: Annotated[str | None, typer.Option(help="Only this bearer's versions.")] = None,
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Every registered version, by bearer and version."""
    from voice_models.registry import versions

    found = versions(_catalog(archive), bearer)
    if json_out:
        print_json([_doc(m) for m in found])
        return
    for m in found:
        typer.echo(f"{m.model_id:<24} {m.status:<9} {m.backend:<10} dataset {m.dataset_manifest_sha256[:12]}")
    if not found:
        typer.echo("no model versions")


@app.command("show")
@reports_errors
def show(model_id: ModelArg, archive: ArchiveOpt = None, json_out: JsonOpt = False) -> None:
    """One version with its lineage and metrics."""
    from voice_models.registry import get

    doc = _doc(get(_catalog(archive), model_id))
    if json_out:
        print_json(doc)
        return
    for key, value in doc.items():
        typer.echo(f"{key:<24} {value}")


@app.command("promote")
@reports_errors
def promote(model_id: ModelArg, archive: ArchiveOpt = None, json_out: JsonOpt = False) -> None:
    """candidate -> active when its metrics pass the promotion gate (voice_models/registry.py)."""
    from voice_models.registry import promote as promote_model

    model = promote_model(_catalog(archive), model_id)
    if json_out:
        print_json(_doc(model))
    else:
        typer.echo(f"{model.model_id} is active")


@app.command("retire")
@reports_errors
def retire(model_id: ModelArg, archive: ArchiveOpt = None, json_out: JsonOpt = False) -> None:
    """Take a version out of service (its rows and files stay, for the audit)."""
    from voice_models.registry import retire as retire_model

    model = retire_model(_catalog(archive), model_id)
    if json_out:
        print_json(_doc(model))
    else:
        typer.echo(f"{model.model_id} is retired")
