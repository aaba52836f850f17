"""``heirloom lexicon build|show``: the per-dialect pronunciation lexicons the aligner and voice models use."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli._common import ArchiveOpt, JsonOpt, print_json, reports_errors

app = typer.Typer(
    help="Per-dialect pronunciation lexicons (MFA format, versioned in the archive).", no_args_is_help=True
)
DialectOpt = Annotated[str, typer.Option("--dialect", help="The dialect: an espeak-ng voice such as en-gb-scotland.")]


@app.command("build")
@reports_errors
def build(
    dialect: DialectOpt,
    words: Annotated[
        Path,
        typer.Option(
            "--words", help="Words or transcripts (one or more per line), or a dictionary of 'word<TAB>phones' lines."
        ),
    ],
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add the words of FILE to the dialect's lexicon (G2P for new words) as a new version."""
    from catalog.storage import open_storage
    from heirloom.errors import HeirloomError
    from heirloom.settings import archive_uri
    from tasks.align import build as build_lexicon
    from tasks.align import check_dialect, parse_dict, words_of

    check_dialect(dialect)
    try:
        text = words.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise HeirloomError(f"cannot read the word list {words}: {e}; give a UTF-8 text file") from None
    given = parse_dict(text, str(words)) if "\t" in text else {}
    plain = [] if given else words_of(text)
    lex, added = build_lexicon(open_storage(archive_uri(archive)), dialect, plain, given)
    doc = {"dialect": dialect, "version": lex.name, "words": len(lex.entries), "added": added}
    if json_out:
        print_json(doc)
    else:
        typer.echo(f"{lex.name}: {len(lex.entries)} words, {added} new" + ("" if added else " (no new version)"))


@app.command("show")
@reports_errors
def show(
    word: Annotated[str, typer.Argument(help="The word to look up.")],
    dialect: DialectOpt,
    bearer: Annotated[str | None, typer.Option("--bearer", help="Apply this bearer's exception list.")] = None,
    archive: ArchiveOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """How WORD is pronounced in the dialect: bearer exception, lexicon entry, G2P, or out of vocabulary."""
    from catalog.storage import open_storage
    from heirloom.settings import archive_uri
    from tasks.align import Lexicon, bearer_exceptions, check_dialect, latest, pronounce, words_of

    storage = open_storage(archive_uri(archive))
    lex = latest(storage, check_dialect(dialect)) or Lexicon(dialect, 0)
    tokens = words_of(word) or [word.lower()]
    result = pronounce(tokens, lex, bearer_exceptions(storage, bearer) if bearer else None)
    rows = [
        {"word": w, "source": result.source[w], "pronunciations": [" ".join(p) for p in result.pronunciations[w]]}
        for w in dict.fromkeys(tokens)
    ]
    if json_out:
        print_json({"dialect": dialect, "lexicon_version": lex.name if lex.version else None, "words": rows})
        return
    for row in rows:
        for pron in row["pronunciations"]:
            typer.echo(
                f"{row['word']}\t{pron}\t({row['source']}{', ' + lex.name if row['source'] == 'lexicon' else ''})"
            )
