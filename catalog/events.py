"""The append-only ``events`` table: every step says what it did, when, as whom, to what, with what outcome."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from catalog.manifests import Event, EventOutcome
from catalog.tables import Catalog
from heirloom import AGENT


def make_event(
    type: str,
    object_ids: Sequence[str],
    outcome: EventOutcome = "success",
    *,
    detail: dict[str, Any] | None = None,
    agent: str = AGENT,
    flow_run_id: str | None = None,
) -> Event:
    """An :class:`Event` with a fresh id; ``detail`` is stored as JSON text."""
    return Event(
        event_id=uuid.uuid4().hex,
        type=type,
        agent=agent,
        object_ids=tuple(object_ids),
        outcome=outcome,
        detail=json.dumps(detail, sort_keys=True, default=str) if detail else None,
        flow_run_id=flow_run_id,
    )


def log_events(catalog: Catalog, events: Iterable[Event]) -> int:
    """Append events in one commit; returns how many."""
    return catalog.append("events", list(events))
