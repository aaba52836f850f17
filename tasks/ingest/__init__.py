"""Ingest: a collection as an archivist delivers it, into the archive, with nothing lost and nothing altered.

Takes a folder or ``s3://`` prefix of recordings plus ``manifest.csv`` and the known bearers; gives verified
originals under ``originals/``, one ``recordings`` row per new original, PREMIS events, duplicates reported,
and everything unusable in ``quarantine/<collection>/`` beside its reason.

- :mod:`tasks.ingest.manifest`: parsing and checking ``manifest.csv`` (one problem per bad row, not one per file).
- :mod:`tasks.ingest.batch`: planning the batch, processing each file (hash, probe, copy, verify), quarantine,
  committing rows and events, the summary the CLI prints.
"""

from tasks.ingest.batch import IngestItem, ItemResult, commit_results, plan_ingest, process_item, quarantine, summarize
from tasks.ingest.manifest import MANIFEST_NAME, ManifestRow, parse_manifest, render_manifest

__all__ = [
    "MANIFEST_NAME",
    "IngestItem",
    "ItemResult",
    "ManifestRow",
    "commit_results",
    "parse_manifest",
    "plan_ingest",
    "process_item",
    "quarantine",
    "render_manifest",
    "summarize",
]
