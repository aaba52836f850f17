"""``heirloom serve [--host 127.0.0.1] [--port 8000]``: the exhibit API, with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli._common import ArchiveOpt, quiet_prefect, reports_errors


@reports_errors
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on (loopback unless a site says otherwise).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    archive: ArchiveOpt = None,
) -> None:
    """Serve the exhibit API (OpenAPI at /docs and /openapi.json) and generate approved texts in the background."""
    quiet_prefect()
    import uvicorn

    from flows.api import create_app

    uvicorn.run(create_app(archive), host=host, port=port, log_level="warning")
