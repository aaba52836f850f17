"""The model registry: versions per bearer, and the promotion gate from candidate to active.

Versions are 1, 2, ... per bearer. Two trainings of one bearer finishing together both ask for the next
number; the row is inserted with a merge keyed on (bearer_id, version), so only one can take it and the other
moves on to the following number.

The promotion gate (``PromotionGate``): a candidate becomes active only when its evaluation shows
- speaker similarity to the bearer's held-out recordings above ``min_similarity``, and above its
  similarity to other bearers by ``min_similarity_margin`` (it sounds like them, and not like anyone);
- the second judge (a speaker-ID model the training never saw) ranking the bearer first for at least
  ``min_speaker_id_share`` of the held-out clips, where the archive has other bearers to tell apart: an
  optimiser can fool one embedding, two agreeing judges are harder to fool;
- word error rate at most ``max_wer`` (it says the words: Whisper read the adapted kokoro voices at 0.02-0.05);
- DNSMOS overall at least ``min_dnsmos`` (it is clean enough to play in a hall).
The bearer's previous active version is retired when a new one is promoted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from catalog.manifests import VoiceModelVersion
from catalog.tables import Catalog
from heirloom.errors import CatalogError, ObjectExistsError

MAX_RACES = 20


@dataclass(frozen=True, slots=True)
class PromotionGate:
    min_similarity: float = 0.80
    min_similarity_margin: float = 0.15
    min_speaker_id_share: float = 0.8
    max_wer: float = 0.10
    min_dnsmos: float = 3.0

    def check(self, metrics: dict[str, Any]) -> list[str]:
        """Why ``metrics`` (as evaluation writes them) fail the gate; empty when they pass."""
        failures = []
        sim, other = metrics.get("similarity_to_bearer"), metrics.get("similarity_to_others")
        if sim is None or sim < self.min_similarity:
            failures.append(f"similarity to the bearer {sim} (< {self.min_similarity})")
        if sim is not None and other is not None and sim - other < self.min_similarity_margin:
            failures.append(f"similarity to others {other} is within {self.min_similarity_margin} of the bearer's")
        first, clips = metrics.get("speaker_id_first"), metrics.get("speaker_id_clips")
        if first is not None and clips and first / clips < self.min_speaker_id_share:
            failures.append(f"the second judge ranks the bearer first for {first} of {clips} clips")
        wer = metrics.get("wer")
        if wer is None or wer > self.max_wer:
            failures.append(f"word error rate {wer} (> {self.max_wer})")
        dnsmos = metrics.get("dnsmos_ovrl")
        if dnsmos is None or dnsmos < self.min_dnsmos:
            failures.append(f"DNSMOS OVRL {dnsmos} (< {self.min_dnsmos})")
        return failures


def versions(catalog: Catalog, bearer_id: str | None = None) -> list[VoiceModelVersion]:
    rows = [VoiceModelVersion.from_dict(r) for r in catalog.read("models").to_pylist()]
    return sorted(
        (m for m in rows if bearer_id is None or m.bearer_id == bearer_id), key=lambda m: (m.bearer_id, m.version)
    )


def get(catalog: Catalog, model_id: str) -> VoiceModelVersion:
    found = [m for m in versions(catalog) if m.model_id == model_id]
    if not found:
        raise CatalogError(f"no model {model_id!r}; `heirloom models list` shows the registered versions")
    return found[0]


def register(
    catalog: Catalog,
    candidate: VoiceModelVersion,
    *,
    place: Callable[[VoiceModelVersion], VoiceModelVersion] | None = None,
) -> VoiceModelVersion:
    """Insert ``candidate`` as the bearer's next version (its own version and model_id are ignored).

    ``place`` puts the version's files where the row will say they are, and returns the row with their URIs; it
    raises ObjectExistsError when a concurrent registration has already taken that version's folder.
    """
    taken = 0
    for _ in range(MAX_RACES):
        version = max([taken, *(m.version for m in versions(catalog, candidate.bearer_id))]) + 1
        row = replace(candidate, version=version, model_id=f"{candidate.bearer_id}-v{version}", status="candidate")
        if place is not None:
            try:
                row = place(row)
            except ObjectExistsError:
                taken = version
                continue
        if catalog.insert_new("models", [row], key=("bearer_id", "version")):
            return row
        taken = version
    raise CatalogError(f"could not register a version for {candidate.bearer_id}: {MAX_RACES} concurrent registrations")


def promote(catalog: Catalog, model_id: str, gate: PromotionGate = PromotionGate()) -> VoiceModelVersion:
    """candidate -> active when its metrics pass the gate; the bearer's previous active version is retired."""
    model = get(catalog, model_id)
    if model.status != "candidate":
        raise CatalogError(f"{model_id} is {model.status}; only a candidate can be promoted")
    failures = gate.check(json.loads(model.metrics or "{}"))
    if failures:
        raise CatalogError(f"{model_id} does not pass the promotion gate: " + "; ".join(failures))
    catalog.update("models", f"bearer_id = '{model.bearer_id}' AND status = 'active'", {"status": "'retired'"})
    catalog.update("models", f"model_id = '{model_id}'", {"status": "'active'"})
    return replace(model, status="active")


def retire(catalog: Catalog, model_id: str) -> VoiceModelVersion:
    model = get(catalog, model_id)
    if model.status in ("retired", "revoked"):
        raise CatalogError(f"{model_id} is already {model.status}")
    catalog.update("models", f"model_id = '{model_id}'", {"status": "'retired'"})
    return replace(model, status="retired")
