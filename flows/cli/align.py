"""``heirloom align [--collection C | --recording ID]``: transcripts aligned to working copies, as segments."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli._common import ArchiveOpt, JsonOpt, print_json, quiet_prefect, reports_errors


@reports_errors
def align(
    collection: Annotated[str | None, typer.Option(help="Only this collection.")] = None,
    recording: Annotated[str | None, typer.Option(help="Only this recording id.")] = None,
    backend: Annotated[
        str, typer.Option(help="gmm (built in) or mfa (Montreal Forced Aligner, where the mfa command is installed).")
    ] = "gmm",
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Align every prepared recording with a transcript; exit 1 when a recording's alignment failed (no
    segment, or every segment flagged). A doubtful one is aligned, kept out of training, and says why."""
    quiet_prefect()
    from flows.align import align as align_flow
    from tasks.align import BACKENDS

    if backend not in BACKENDS:
        raise typer.BadParameter(f"{backend!r} is not one of {', '.join(BACKENDS)}", param_hint="--backend")
    result = align_flow(collection=collection, recording=recording, archive=archive, backend=backend)
    if json_out:
        print_json(result)
    else:
        for r in result["recordings"]:
            oov = f"  OOV: {', '.join(r['oov'])}" if r["oov"] else ""
            aligners = ", ".join(r["aligners"]) or "none"
            typer.echo(
                f"  {r['recording_id'][:16]}  {r['status']}: {r['segments']} segments, {r['flagged']} flagged,"
                f" aligned by {aligners}{oov}"
            )
            for d in r["doubts"]:
                typer.echo(f"    doubt: {d}")
            for e in r["errors"]:
                typer.echo(f"    error: {e}")
        for s in result["skipped"]:
            typer.echo(f"  skipped {s['recording_id'][:16]}  {s['reason']}")
        status = [r["status"] for r in result["recordings"]]
        typer.echo(
            f"{len(status)} aligned ({status.count('doubtful')} doubtful, {status.count('failed')} failed),"
            f" {len(result['skipped'])} skipped"
        )
    if any(r["status"] == "failed" for r in result["recordings"]):
        raise typer.Exit(1)
