"""``heirloom init``: create the archive's catalog tables (safe to re-run)."""

from __future__ import annotations

import typer

from catalog.tables import Catalog
from flows.cli._common import ArchiveOpt, JsonOpt, print_json, reports_errors
from heirloom.settings import archive_uri


@reports_errors
def init(
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create the catalog's Delta tables in the archive."""
    uri = archive_uri(archive)
    created = Catalog.open(uri).init()
    if json_out:
        print_json({"archive": uri, "created": created})
    else:
        typer.echo(f"archive {uri}: " + (f"created {', '.join(created)}" if created else "catalog already set up"))
