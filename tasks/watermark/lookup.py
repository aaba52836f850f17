"""What a recovered payload names: the clip (and through it the exhibit and model) in the catalog."""

from __future__ import annotations

from typing import Any

from catalog.tables import Catalog


def clips_with_payload(catalog: Catalog, payload_hex: str) -> list[dict[str, Any]] | None:
    """Rows of ``clips`` whose watermark payload is ``payload_hex``; None when the catalog has no clips table."""
    if not catalog.exists("clips"):
        return None
    rows = catalog.read("clips").to_pylist()
    return [r for r in rows if r["watermark_payload"].lower() == payload_hex.lower()]
