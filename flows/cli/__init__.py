"""The ``heirloom`` command: one command per module, registered in the explicit lists below.

Commands that start no flow import no Prefect, so they stay quick.
"""

from __future__ import annotations

import typer

from flows.cli import (
    align,
    audit,
    bearers,
    catalog,
    consent,
    demo,
    erase,
    exhibit,
    export,
    fixity,
    generate,
    ingest,
    init,
    lexicon,
    models,
    prepare,
    provenance,
    serve,
    train,
    watermark,
)

app = typer.Typer(
    name="heirloom",
    help="Field recordings of tradition-bearers: ingest, prepare, align, voice, consent, audit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_commands = [
    init.init,
    ingest.ingest,
    prepare.prepare,
    align.align,
    fixity.fixity,
    train.train,
    generate.generate,
    provenance.provenance,
    serve.serve,
    erase.erase,
    audit.audit,
    demo.demo,
]
_groups = [
    ("catalog", catalog.app),
    ("bearers", bearers.app),
    ("consent", consent.app),
    ("watermark", watermark.app),
    ("lexicon", lexicon.app),
    ("export", export.app),
    ("models", models.app),
    ("exhibit", exhibit.app),
    ("base", train.base_app),
]

for _command in _commands:
    app.command()(_command)
for _name, _group in _groups:
    app.add_typer(_group, name=_name)


def main() -> None:
    app()
