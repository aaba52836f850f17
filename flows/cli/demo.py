"""``heirloom demo``: build a demo collection and run every stage on it."""

from __future__ import annotations

import typer

from flows.cli._common import ArchiveOpt, JsonOpt, print_json, quiet_prefect, reports_errors
from flows.cli.ingest import print_ingest_summary


@reports_errors
def demo(
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Synthesize stand-in tradition-bearers with field damage and broken files, then ingest and check them."""
    quiet_prefect()
    from flows.demo import demo as demo_flow

    result = demo_flow(archive=archive)
    if json_out:
        print_json(result)
        return
    print_ingest_summary(result["ingest"])
    prepared = result["prepare"]["prepared"]
    gates = {g: sum(p["gate"] == g for p in prepared) for g in ("pass", "review", "fail")}
    typer.echo(
        f"prepare: {len(prepared)} working copies "
        f"({gates['pass']} pass, {gates['review']} review, {gates['fail']} fail)"
    )
    for p in prepared:
        if p["gate"] != "pass":
            typer.echo(f"  {p['gate']:<6} {p['recording_id'][:16]}  {'; '.join(p['reasons'])}")
    fx = result["fixity"]
    typer.echo(f"fixity: {fx['checked']} originals checked, {fx['ok']} intact")
    for c in result["consents"]:
        typer.echo(f"consent: {c['bearer_id']} grants {', '.join(c['scopes'])}")
    failing = [s["check"] for s in result["audit"]["summary"] if s["status"] == "fail"]
    typer.echo(
        f"audit: {len(result['audit']['findings'])} finding(s)" + (f" in {', '.join(failing)}" if failing else "")
    )
    sql = "select bearer_id, format, duration_s from recordings"
    typer.echo(f'try: heirloom catalog query "{sql}" --archive {result["archive"]}')
