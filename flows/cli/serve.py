"""``heirloom serve [--host 127.0.0.1] [--port 8000] [--workers N]``: the exhibit API, with uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from flows.cli._common import ArchiveOpt, quiet_prefect, reports_errors


@reports_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback unless a site says so).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="API worker processes (one per core serves the most).")] = 1,
    archive: ArchiveOpt = None,
) -> None:
    """Serve the exhibit API (OpenAPI at /docs and /openapi.json) and generate approved texts in the background."""
    quiet_prefect()
    import uvicorn

    from catalog.tables import Catalog
    from flows.api.generation import GenerationLoop
    from heirloom.settings import archive_uri, exhibit_settings

    uri = archive_uri(archive)
    os.environ["HEIRLOOM_ARCHIVE"] = uri  # the workers read it
    settings = exhibit_settings()  # a bad setting or an unreachable archive fails here, before uvicorn starts
    Catalog.open(uri).init()
    loop = GenerationLoop(uri) if settings.generate_in_process else None
    if loop is not None:
        loop.start()
    try:
        uvicorn.run(
            "flows.api.app:app_from_environment", factory=True, host=host, port=port, workers=workers,
            log_level="warning",
        )  # fmt: skip
    finally:
        if loop is not None:
            loop.stop()
