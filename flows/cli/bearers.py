"""``heirloom bearers add|list``: register tradition-bearers (pseudonymous ids only) before ingest."""

from __future__ import annotations

from typing import Annotated

import typer

from catalog.manifests import Bearer
from catalog.tables import Catalog
from flows.cli._common import ArchiveOpt, JsonOpt, print_json, reports_errors
from heirloom.settings import archive_uri
from tasks.consent import write_person

app = typer.Typer(help="Register and list tradition-bearers.", no_args_is_help=True)


def register_bearers(catalog: Catalog, bearers: list[Bearer]) -> int:
    """Add bearers not yet registered; returns how many were new."""
    catalog.init()
    return catalog.insert_new("bearers", bearers, key="bearer_id")


@app.command("add")
@reports_errors
def add(
    bearer_id: Annotated[str, typer.Argument(help="Pseudonymous id, e.g. b-0042 (no names: those go in people/).")],
    dialect: Annotated[str | None, typer.Option(help="Dialect code, e.g. en-gb-scotland.")] = None,
    status: Annotated[str, typer.Option(help="living or deceased.")] = "living",
    community: Annotated[list[str] | None, typer.Option(help="Community id (repeatable).")] = None,
    language: Annotated[list[str] | None, typer.Option(help="Language code (repeatable).")] = None,
    name: Annotated[
        str | None, typer.Option(help="The person's name: kept in people/<id>.json, never in the catalog.")
    ] = None,
    contact: Annotated[str | None, typer.Option(help="Contact details, kept beside the name.")] = None,
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register a tradition-bearer."""
    bearer = Bearer(
        bearer_id=bearer_id,
        status=status,
        dialect=dialect,  # type: ignore[arg-type]
        community_ids=tuple(community or ()),
        languages=tuple(language or ()),
    )
    cat = Catalog.open(archive_uri(archive))
    added = register_bearers(cat, [bearer])
    if name or contact:
        write_person(cat.storage, bearer_id, {"name": name, "contact": contact})
    if json_out:
        print_json({"bearer_id": bearer_id, "added": bool(added)})
    else:
        typer.echo(f"bearer {bearer_id} " + ("registered" if added else "was already registered"))


@app.command("list")
@reports_errors
def list_(archive: ArchiveOpt = None, json_out: JsonOpt = False) -> None:
    """List registered bearers."""
    rows = Catalog.open(archive_uri(archive)).read("bearers").to_pylist()
    if json_out:
        print_json(rows)
        return
    for r in rows:
        typer.echo(f"{r['bearer_id']:<16} {r['status']:<9} {r['dialect'] or '-':<16} {','.join(r['languages'] or [])}")
