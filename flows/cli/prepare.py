"""``heirloom prepare [--collection C | --recording ID]``: working copies, metrics and the quality gate."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli._common import ArchiveOpt, JsonOpt, print_json, quiet_prefect, reports_errors


@reports_errors
def prepare(
    collection: Annotated[str | None, typer.Option(help="Only this collection.")] = None,
    recording: Annotated[str | None, typer.Option(help="Only this recording id.")] = None,
    denoiser: Annotated[str, typer.Option(help="auto, deepfilternet3, noisereduce or none.")] = "auto",
    content: Annotated[str, typer.Option(help="auto, speech or song (song gets gentler denoising).")] = "auto",
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Prepare every original that has no working copy for these settings yet (safe to re-run)."""
    if denoiser not in ("auto", "deepfilternet3", "noisereduce", "none"):
        raise typer.BadParameter("use auto, deepfilternet3, noisereduce or none", param_hint="--denoiser")
    if content not in ("auto", "speech", "song"):
        raise typer.BadParameter("use auto, speech or song", param_hint="--content")
    quiet_prefect()
    from flows.prepare import prepare as prepare_flow
    from tasks.prepare import PrepareParams

    params = PrepareParams(denoiser=denoiser, content=content)  # type: ignore[arg-type]
    result = prepare_flow(collection=collection, recording=recording, archive=archive, params=params)
    if json_out:
        print_json(result)
        return
    for p in result["prepared"]:
        typer.echo(
            f"  {p['gate']:<6} {p['recording_id'][:16]}  SNR {p['snr_db'] or float('nan'):.1f} dB"
            f"  {'; '.join(p['reasons'])}"
        )
    for f in result["failed"]:
        typer.echo(f"  error  {f['recording_id'][:16]}  {f['error']}")
    typer.echo(f"{len(result['prepared'])} prepared, {len(result['failed'])} failed")
    if result["failed"]:
        raise typer.Exit(1)
