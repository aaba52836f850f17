"""``heirloom fixity``: re-hash every original and report mismatches and missing files."""

from __future__ import annotations

import typer

from flows.cli._common import ArchiveOpt, JsonOpt, print_json, quiet_prefect, reports_errors


@reports_errors
def fixity(
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Re-hash all originals; exit 1 if any is missing, unreadable or changed."""
    quiet_prefect()
    from flows.fixity import fixity as fixity_flow

    report = fixity_flow(archive=archive)
    if json_out:
        print_json(report)
    else:
        typer.echo(f"{report['checked']} originals checked, {report['ok']} intact")
        for p in report["problems"]:
            typer.echo(f"  {p['status']:<10} {p['recording_id']}  {p['original_uri']}  {p['detail'] or ''}")
        for uri in report["untracked_originals"]:
            typer.echo(f"  untracked  {uri}  (no catalog row: re-run the ingest that stored it)")
    if report["problems"]:
        raise typer.Exit(1)
