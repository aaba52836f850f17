"""``heirloom export alignments --collection C --format textgrid|json DIR``: alignments for researchers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli._common import ArchiveOpt, JsonOpt, print_json, reports_errors

app = typer.Typer(help="Export catalog content for use outside heirloom.", no_args_is_help=True)


@app.command("alignments")
@reports_errors
def alignments(
    out_dir: Annotated[Path, typer.Argument(help="Directory to write one file per recording into.")],
    collection: Annotated[str, typer.Option(help="The collection to export.")],
    fmt: Annotated[str, typer.Option("--format", help="textgrid (Praat) or json.")] = "textgrid",
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write every aligned recording of the collection: word and phone tiers on the original's timeline."""
    if fmt not in ("textgrid", "json"):
        raise typer.BadParameter("use textgrid or json", param_hint="--format")
    from catalog.storage import open_storage
    from catalog.tables import Catalog
    from heirloom.settings import archive_uri
    from tasks.align import export

    uri = archive_uri(archive)
    written = export(Catalog.open(uri), open_storage(uri), collection, fmt, out_dir)
    if json_out:
        print_json({"collection": collection, "format": fmt, "files": [str(p) for p in written]})
    else:
        typer.echo(f"{len(written)} recordings written to {out_dir}")
