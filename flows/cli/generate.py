"""``heirloom generate [--request R]``: run the ``generate`` flow over every approved (queued) exhibit text."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli._common import ArchiveOpt, JsonOpt, print_json, quiet_prefect, reports_errors


@reports_errors
def generate(
    request: Annotated[str | None, typer.Option(help="Only this request's texts.")] = None,
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Generate the clips of queued texts: consent, synthesis, check, loudness, watermark, signature.

    Exit 1 when any text failed (each failed text says why in `heirloom exhibit requests`).
    """
    quiet_prefect()
    from flows.generate import generate as generate_flow

    result = generate_flow(archive=archive, request_id=request)
    if json_out:
        print_json(result)
    else:
        states = ", ".join(f"{n} {s}" for s, n in sorted(result["states"].items())) or "nothing queued"
        typer.echo(f"{result['texts']} texts: {states}")
    if result["states"].get("failed"):
        raise typer.Exit(1)
