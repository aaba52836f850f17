"""``heirloom ingest SOURCE --collection NAME``: run the ingest flow over a folder or S3 prefix."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from flows.cli._common import ArchiveOpt, JsonOpt, print_json, quiet_prefect, reports_errors


def print_ingest_summary(summary: dict[str, Any]) -> None:
    counts = summary["counts"]
    typer.echo(f"collection {summary['collection']} from {summary['source']} into {summary['archive']}")
    for f in summary["files"]:
        detail = f["reason"] or f["recording_id"] or ""
        typer.echo(f"  {f['outcome']:<12} {f['file']}  {detail}")
    typer.echo(f"{counts['ingested']} ingested, {counts['duplicate']} duplicate, {counts['quarantined']} quarantined")


@reports_errors
def ingest(
    source: Annotated[str, typer.Argument(help="Folder or s3://bucket/prefix holding recordings and manifest.csv.")],
    collection: Annotated[str, typer.Option(help="Collection name (letters, digits, '.', '_', '-').")],
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Ingest a collection: fixity, validation, dedupe, preservation copy, quarantine of bad files.

    Exits 0 when the flow ran, even if files were quarantined; non-zero only when it could not run.
    """
    quiet_prefect()
    from flows.ingest import ingest as ingest_flow

    summary = ingest_flow(source=source, collection=collection, archive=archive)
    if json_out:
        print_json(summary)
    else:
        print_ingest_summary(summary)
