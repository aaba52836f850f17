"""``heirloom watermark embed|detect|keygen``: mark generated audio with its catalog key, and read it back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli._common import ArchiveOpt, JsonOpt, print_json, reports_errors

app = typer.Typer(help="Payload watermark of generated audio.", no_args_is_help=True)
KeyOpt = Annotated[
    Path | None,
    typer.Option("--key-file", help="The site's secret key (default: the file $HEIRLOOM_WATERMARK_KEY_FILE names)."),
]


@app.command("keygen")
@reports_errors
def keygen(path: Annotated[Path, typer.Argument(help="Where to write the new key (must not exist).")]) -> None:
    """Create a site key: 32 random bytes, readable by its owner only. Keep it secret; back it up."""
    from heirloom.errors import WatermarkError
    from tasks.watermark import new_key_file

    if path.exists():
        raise WatermarkError(f"{path} exists; a key is never overwritten (marks made with it would be lost)")
    key = new_key_file(path)
    typer.echo(f"key {key.fingerprint} written to {path}")


@app.command("embed")
@reports_errors
def embed(
    src: Annotated[Path, typer.Argument(help="Audio to mark (any rate, mono or stereo).")],
    out: Annotated[Path, typer.Argument(help="Where to write the marked audio (WAV or FLAC, same rate).")],
    payload: Annotated[str, typer.Option("--payload", help="32-bit payload as 8 hex digits.")],
    key_file: KeyOpt = None,
) -> None:
    """Embed PAYLOAD in SRC and write OUT; the original is left as it is."""
    import soundfile as sf

    from heirloom.errors import WatermarkError
    from tasks.audio import read_all
    from tasks.watermark import embed as embed_mark
    from tasks.watermark import load_key, parse_payload

    bits = parse_payload(payload)
    key = load_key(key_file)
    if out.resolve() == src.resolve():
        raise WatermarkError(f"{out} is the input; write the marked audio to a new file")
    audio, rate = read_all(src)
    marked = embed_mark(audio[:, 0] if audio.shape[1] == 1 else audio, rate, bits, key)
    sf.write(str(out), marked.clip(-1.0, 1.0), rate, subtype="PCM_24" if out.suffix.lower() == ".flac" else "FLOAT")
    typer.echo(f"marked {src} -> {out} with payload {bits.hex()} (key {key.fingerprint})")


@app.command("detect")
@reports_errors
def detect(
    path: Annotated[Path, typer.Argument(help="Audio that may carry a watermark (any format heirloom reads).")],
    key_file: KeyOpt = None,
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Print the payload and its confidence, or "no watermark"; with a catalog, the clip it names.

    Exit 0 when a watermark was found, 2 when none was, 1 on an error.
    """
    from catalog.tables import Catalog
    from heirloom.settings import archive_uri
    from tasks.audio import read_all
    from tasks.watermark import clips_with_payload, load_key
    from tasks.watermark import detect as detect_mark

    key = load_key(key_file)
    audio, rate = read_all(path)
    found = detect_mark(audio, rate, key)
    doc = {"file": str(path), "key": key.fingerprint, **found.to_dict(), "clips": None, "registered": None}
    if found.found and found.payload is not None:
        doc["clips"] = clips_with_payload(Catalog.open(archive_uri(archive)), found.payload.hex())
        doc["registered"] = None if doc["clips"] is None else bool(doc["clips"])
    if json_out:
        print_json(doc)
    elif found.found:
        typer.echo(f"watermark {doc['payload']} (confidence {found.confidence:.2f}, score {found.score:.1f})")
        for clip in doc["clips"] or []:
            typer.echo(f"  clip {clip['clip_id']}  exhibit {clip['exhibit_id']}  model {clip['model_id']}")
        if doc["clips"] == []:
            typer.echo("  unregistered: no clip of this archive carries this payload, so it names no clip")
        elif doc["clips"] is None:
            typer.echo("  (no clips table in the archive to look it up in)")
    else:
        typer.echo(f"no watermark ({found.reason})")
    if not found.found:
        raise typer.Exit(2)
