"""``heirloom catalog query "SQL"``: curators' SQL over the catalog tables."""

from __future__ import annotations

from typing import Annotated

import typer

from catalog.query import run_query
from catalog.tables import Catalog
from flows.cli._common import ArchiveOpt, print_json, reports_errors
from heirloom.settings import archive_uri

app = typer.Typer(help="Query the catalog.", no_args_is_help=True)


@app.command("query")
@reports_errors
def query(
    sql: Annotated[
        str,
        typer.Argument(
            help="SQL over bearers, recordings, derivatives, segments, consents, models, exhibits, clips, events."
        ),
    ],
    archive: ArchiveOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the rows as one JSON document.")] = False,
) -> None:
    """Run a SQL query (DuckDB) over the catalog and print a table, or JSON rows."""
    result = run_query(Catalog.open(archive_uri(archive)), sql)
    if json_out:
        print_json(result.to_pylist())
        return
    import duckdb

    typer.echo(
        str(duckdb.arrow(result)) if result.num_rows else f"(no rows; columns: {', '.join(result.column_names)})"
    )
