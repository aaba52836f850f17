"""Closed vocabularies that records and policies share (kept here so neither layer imports the other)."""

from __future__ import annotations

from typing import Final

SCOPES: Final = (
    "preserve",
    "research",
    "public_access",
    "model_training",
    "voice_synthesis",
    "exhibit_generation",
    "commercial",
)
GRANTOR_TYPES: Final = ("self", "legal_guardian", "family", "community_authority", "estate")
CUSTODIAN_GRANTORS: Final = ("family", "community_authority", "estate")
BEARER_STATUSES: Final = ("living", "deceased")
