"""``heirloom audit [--json] [--html FILE]``: the curator's audit of models, clips and consent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli._common import ArchiveOpt, JsonOpt, print_json, quiet_prefect, reports_errors
from tasks.consent import render_audit_html


@reports_errors
def audit(
    archive: ArchiveOpt = None,
    html: Annotated[Path | None, typer.Option(help="Also write a report a curator can read to this file.")] = None,
    fixity_max_age_days: Annotated[float, typer.Option(help="A fixity check older than this is a finding.")] = 90,
    json_out: JsonOpt = False,
) -> None:
    """Check every model, clip and consent record; exit 1 when there are findings."""
    quiet_prefect()
    from flows.audit import audit as audit_flow

    doc = audit_flow(archive=archive, fixity_max_age_days=fixity_max_age_days)
    if html is not None:
        html.write_text(render_audit_html(doc, archive=doc["archive"]), encoding="utf-8")
    if json_out:
        print_json(doc)
    else:
        for s in doc["summary"]:
            typer.echo(
                f"  {s['status']:<4}  {s['check']:<26} {s['items_checked']:>5} checked  {s['findings']:>4} finding(s)"
            )
        for f in doc["findings"]:
            typer.echo(f"  - [{f['check']}] {f['message']}")
    if not doc["ok"]:
        raise typer.Exit(1)
