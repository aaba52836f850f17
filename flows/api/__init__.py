"""The exhibit HTTP API (FastAPI): :func:`create_app`, served by ``heirloom serve``."""

from flows.api.app import create_app

__all__ = ["create_app"]
