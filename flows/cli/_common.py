"""What every command shares: turning heirloom errors into a message and a non-zero exit, JSON output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer

from heirloom.errors import HeirloomError

F = TypeVar("F", bound=Callable[..., Any])
ArchiveOpt = Annotated[str | None, typer.Option(help="Archive root (default: $HEIRLOOM_ARCHIVE or ./archive).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def reports_errors(fn: F) -> F:
    """Exit non-zero with the error's own message (it names the thing and the fix), not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HeirloomError as e:
            typer.echo(f"Error: {e}", err=True)
            raise typer.Exit(1) from e

    return wrapper  # type: ignore[return-value]


def parse_when(value: str | None, invalid: Callable[[str], HeirloomError]) -> datetime | None:
    """An ISO 8601 date or date-time option (UTC when it names no zone); ``invalid(reason)`` is raised when
    it is not one, so each command says whose option was wrong."""
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError as e:
        raise invalid(f"{value!r} is not an ISO 8601 date or date-time") from e
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def print_json(doc: Any) -> None:
    """Print one JSON document on stdout and nothing else."""
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def quiet_prefect() -> None:
    """Keep Prefect's own console output off stdout, which belongs to the command's result, and give its
    ephemeral server time to start on a busy machine."""
    import os

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect waits 20 s by default; on a 2-core worker that is also training or aligning, the ephemeral
    # server's first start took longer and `heirloom ingest` failed with "Timed out while attempting to connect"
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
