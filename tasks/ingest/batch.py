"""Ingest a collection into the archive: plan, process each file, commit to the catalog.

For each file: SHA-256 on arrival (the recording_id), probe and full decode, a conditional copy of the
untouched bytes to ``originals/<sha[:2]>/<sha>.<ext>`` whose hash is then verified, a ``recordings`` row and
PREMIS events. Anything unusable is copied to ``quarantine/<collection>/`` beside a JSON reason, and the
batch goes on. Crash-safe: an original appears only complete (see :mod:`catalog.storage`), rows are
written only for verified originals, and a re-run finds what a killed run already stored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from catalog.events import log_events, make_event
from catalog.manifests import Event, Recording, utc_now
from catalog.storage import Storage, safe_key, sha256_stream, staged
from catalog.tables import Catalog
from catalog.validate import check_id
from heirloom import AGENT
from heirloom.errors import FixityError, HeirloomError, ManifestError, ObjectExistsError, StorageError
from tasks.audio import probe_audio
from tasks.fixity import original_key, verify
from tasks.ingest.manifest import MANIFEST_NAME, ManifestRow, decode_manifest, parse_manifest

QUARANTINE = "quarantine"
Outcome = Literal["ingested", "duplicate", "quarantined"]


@dataclass(frozen=True, slots=True)
class IngestItem:
    """One file to ingest, or one manifest line to report. ``problem`` is set when it must be quarantined
    without being read (no manifest row, unknown bearer, a path outside the collection...)."""

    file: str
    row: ManifestRow | None = None
    problem: str | None = None
    exists: bool = True


@dataclass(frozen=True, slots=True)
class ItemResult:
    file: str
    outcome: Outcome
    source_uri: str
    reason: str | None = None
    recording: Recording | None = None
    events: tuple[Event, ...] = ()
    quarantine_uri: str | None = None
    duplicate_of: str | None = None

    def to_dict(self) -> dict[str, Any]:
        rec = self.recording
        return {
            "file": self.file,
            "outcome": self.outcome,
            "recording_id": rec.recording_id if rec else self.duplicate_of,
            "original_uri": rec.original_uri if rec else None,
            "reason": self.reason,
            "quarantine_uri": self.quarantine_uri,
            "duplicate_of": self.duplicate_of,
        }


def _hidden(key: str) -> bool:
    return any(part.startswith(".") for part in key.split("/"))


def plan_ingest(source: Storage, collection: str, known_bearers: set[str]) -> list[IngestItem]:
    """Match the collection's files against its manifest; every file and every bad row becomes an item."""
    check_id(collection, "collection name")
    present = {o.key for o in source.list() if not _hidden(o.key)}
    if MANIFEST_NAME not in present:
        reason = f"no {MANIFEST_NAME} in {source.root_uri}; add one row per recording (file, bearer_id, ...)"
        return [IngestItem(f, problem=reason) for f in sorted(present)]
    present.discard(MANIFEST_NAME)
    try:
        text = decode_manifest(source.read_bytes(MANIFEST_NAME), where=source.uri(MANIFEST_NAME))
        rows, problems = parse_manifest(text, where=source.uri(MANIFEST_NAME))
    except ManifestError as e:
        return [IngestItem(f, problem=f"malformed manifest: {e}") for f in sorted(present)]

    transcripts = {r.transcript_file for r in rows if r.transcript_file}
    items: list[IngestItem] = []
    claimed: set[str] = set()
    for p in problems:
        inside = p.file is not None and p.file in present
        items.append(IngestItem(p.file or f"{MANIFEST_NAME}:{p.line}", problem=p.reason, exists=inside))
        if inside:
            claimed.add(p.file)  # type: ignore[arg-type]
    for row in rows:
        claimed.add(row.file)
        if row.file not in present:
            reason = f"manifest line {row.line} names {row.file}, which is not in the collection"
            items.append(IngestItem(row.file, row, problem=reason, exists=False))
        elif row.bearer_id not in known_bearers:
            reason = (
                f"unknown bearer {row.bearer_id!r}; register them first with `heirloom bearers add {row.bearer_id}`"
            )
            items.append(IngestItem(row.file, row, problem=reason))
        elif row.transcript_file and row.transcript_file not in present:
            reason = f"transcript_file {row.transcript_file} (line {row.line}) is not in the collection"
            items.append(IngestItem(row.file, row, problem=reason))
        else:
            items.append(IngestItem(row.file, row))
    for f in sorted(present - claimed - transcripts):
        items.append(IngestItem(f, problem=f"no row for {f} in {MANIFEST_NAME}; add one (file, bearer_id, ...)"))
    return sorted(items, key=lambda i: i.file)


def store_original(archive: Storage, key: str, path: Path, sha256: str) -> None:
    """Copy ``path`` to ``key`` unless it is already there, then verify the stored bytes' hash."""
    try:
        with open(path, "rb") as f:
            info = archive.create(key, f)
        if info.sha256 != sha256:
            archive.delete(key)  # our own fresh write, of a file that changed while it was read
            raise FixityError(str(path), sha256, info.sha256 or "?")
    except ObjectExistsError:
        pass  # a previous run or an identical file stored it; the check below proves it is intact
    verify(archive, key, sha256)


def _read_transcript(source: Storage, row: ManifestRow) -> str | None:
    if not row.transcript_file:
        return row.transcript
    try:
        return source.read_bytes(row.transcript_file).decode("utf-8-sig").strip() or None
    except UnicodeDecodeError as e:
        raise ManifestError(source.uri(row.transcript_file), "transcript is not UTF-8 text") from e


def process_item(
    item: IngestItem, *, source: Storage, archive: Storage, collection: str, flow_run_id: str | None = None
) -> ItemResult:
    """Fixity, validation and the preservation copy of one file; quarantine it on any problem."""
    src_uri = source.uri(item.file) if item.exists else f"{source.root_uri.rstrip('/')}/{item.file}"
    if item.problem or item.row is None:
        return quarantine(
            item,
            item.problem or "no manifest row",
            source=source,
            archive=archive,
            collection=collection,
            src_uri=src_uri,
            flow_run_id=flow_run_id,
        )
    row = item.row
    events: list[Event] = []
    try:
        with staged(source, item.file) as path:
            with open(path, "rb") as f:
                sha, size = sha256_stream(f)
            events.append(
                make_event(
                    "message digest calculation",
                    [sha],
                    detail={"algorithm": "SHA-256", "source_uri": src_uri},
                    flow_run_id=flow_run_id,
                )
            )
            try:
                info = probe_audio(path, uri=src_uri)
            except HeirloomError as e:
                events.append(
                    make_event("validation", [sha], "failure", detail={"reason": str(e)}, flow_run_id=flow_run_id)
                )
                raise
            events.append(
                make_event(
                    "validation",
                    [sha],
                    detail={
                        "format": info.format,
                        "codec": info.codec,
                        "sample_rate": info.sample_rate,
                        "channels": info.channels,
                        "frames": info.frames,
                    },
                    flow_run_id=flow_run_id,
                )
            )
            transcript = _read_transcript(source, row)
            key = original_key(sha, info.ext)
            store_original(archive, key, path, sha)
    except (HeirloomError, OSError) as e:
        reason = str(e) if isinstance(e, HeirloomError) else f"cannot read {src_uri}: {e.strerror or e}"
        return quarantine(
            item,
            reason,
            source=source,
            archive=archive,
            collection=collection,
            src_uri=src_uri,
            flow_run_id=flow_run_id,
            events=events,
        )
    recording = Recording(
        recording_id=sha,
        bearer_id=row.bearer_id,
        collection=collection,
        source_uri=src_uri,
        original_uri=archive.uri(key),
        format=info.format,
        codec=info.codec,
        sample_rate=info.sample_rate,
        channels=info.channels,
        duration_s=info.duration_s,
        size_bytes=size,
        bit_depth=info.bit_depth,
        title=row.title,
        transcript=transcript,
        language=row.language,
        dialect=row.dialect,
        tk_labels=row.tk_labels,
        recorded_at=row.recorded_at,
        notes=row.notes,
    )
    events.append(
        make_event(
            "ingestion",
            [sha],
            detail={"source_uri": src_uri, "original_uri": recording.original_uri, "collection": collection},
            flow_run_id=flow_run_id,
        )
    )
    return ItemResult(item.file, "ingested", src_uri, recording=recording, events=tuple(events))


def _quarantine_key(collection: str, file: str) -> str:
    try:
        return f"{QUARANTINE}/{collection}/{safe_key(file)}"
    except StorageError:
        return f"{QUARANTINE}/{collection}/_unsafe/{quote(file, safe='')}"


def quarantine(
    item: IngestItem,
    reason: str,
    *,
    source: Storage,
    archive: Storage,
    collection: str,
    src_uri: str,
    flow_run_id: str | None = None,
    events: Sequence[Event] = (),
) -> ItemResult:
    """Keep a copy of the bad file under ``quarantine/<collection>/`` with ``<file>.reason.json``."""
    qkey = _quarantine_key(collection, item.file)
    copied = False
    if item.exists:
        try:
            with source.open_read(item.file) as src:
                archive.put(qkey, src)
            copied = True
        except (StorageError, OSError) as e:
            reason = f"{reason} (and the file could not be copied to quarantine: {e})"
    note = {
        "file": item.file,
        "collection": collection,
        "source_uri": src_uri,
        "reason": reason,
        "bytes_kept": copied,
        "at": utc_now().isoformat(),
        "agent": AGENT,
    }
    archive.put(f"{qkey}.reason.json", json.dumps(note, indent=2).encode())
    event = make_event(
        "quarantine", [src_uri], detail={"reason": reason, "quarantine_uri": archive.uri(qkey)}, flow_run_id=flow_run_id
    )
    return ItemResult(
        item.file,
        "quarantined",
        src_uri,
        reason=reason,
        events=(*events, event),
        quarantine_uri=archive.uri(qkey) if copied else archive.uri(f"{qkey}.reason.json"),
    )


def commit_results(
    catalog: Catalog, results: Sequence[ItemResult], *, flow_run_id: str | None = None
) -> list[ItemResult]:
    """Write the catalog rows and events of processed items; files whose bytes are already archived
    (earlier runs, or twice in this batch) become duplicates. Returns the final results."""
    existing = {
        r["recording_id"]: r["source_uri"]
        for r in catalog.read("recordings", columns=["recording_id", "source_uri"]).to_pylist()
    }
    final: list[ItemResult] = []
    new: list[Recording] = []
    seen: dict[str, str] = {}
    for r in results:
        if r.outcome == "ingested" and r.recording is not None:
            rid = r.recording.recording_id
            first_source = existing.get(rid) or seen.get(rid)
            if first_source is not None:
                same = first_source == r.source_uri
                why = "already ingested from this same file" if same else f"same bytes as {first_source}"
                event = make_event(
                    "duplicate detection",
                    [rid],
                    detail={"source_uri": r.source_uri, "first_source_uri": first_source},
                    flow_run_id=flow_run_id,
                )
                r = replace(
                    r,
                    outcome="duplicate",
                    reason=why,
                    duplicate_of=rid,
                    recording=None,
                    events=(*[e for e in r.events if e.type != "ingestion"], event),
                )
            else:
                seen[rid] = r.source_uri
                new.append(r.recording)
        final.append(r)
    catalog.insert_new("recordings", new, key="recording_id")
    log_events(catalog, [e for r in final for e in r.events])
    return final


def summarize(results: Sequence[ItemResult], **context: Any) -> dict[str, Any]:
    counts = {o: sum(1 for r in results if r.outcome == o) for o in ("ingested", "duplicate", "quarantined")}
    return {**context, "counts": counts, "files": [r.to_dict() for r in results]}
