"""Carrying out a revocation: retire and delete what was made under the withdrawn scopes, for good.

Order matters for crash safety: the consent record is written first (nothing new may start), then models are
marked revoked and clips withdrawn (nothing is served), then storage objects are deleted, then the rows are
deleted and the tables purged (vacuum and log clean-up). Every step is idempotent, so a re-run after a crash
finishes the job.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from catalog.events import make_event
from catalog.storage import Storage
from catalog.tables import Catalog
from heirloom.errors import StorageError
from heirloom.vocabulary import SCOPES
from tasks.consent.people import erase_person
from tasks.consent.records import bearer_facts, revoke_scopes

MODEL_SCOPES = frozenset({"model_training", "voice_synthesis"})
CLIP_SCOPES = frozenset({"exhibit_generation"})


@dataclass(frozen=True, slots=True)
class RevocationReport:
    bearer_id: str
    scopes: tuple[str, ...]
    reason: str
    new_consent_ids: tuple[str, ...] = ()
    models_removed: tuple[str, ...] = ()
    clips_removed: tuple[str, ...] = ()
    objects_deleted: tuple[str, ...] = ()
    tables_purged: tuple[str, ...] = ()
    people_data_deleted: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _sql_list(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def affected(catalog: Catalog, bearer_id: str, scopes: Sequence[str]) -> tuple[list[dict], list[dict]]:
    """The model rows and clip rows a withdrawal of ``scopes`` reaches."""
    models = [m for m in catalog.read("models").to_pylist() if m["bearer_id"] == bearer_id]
    bearer_models = {m["model_id"] for m in models}
    clips = [c for c in catalog.read("clips").to_pylist() if c["model_id"] in bearer_models]
    if MODEL_SCOPES & set(scopes):
        return models, clips
    if CLIP_SCOPES & set(scopes):
        return [], clips
    if "commercial" in scopes or "public_access" in scopes:
        exhibits = {e["exhibit_id"]: e for e in catalog.read("exhibits").to_pylist()}
        hit = [
            c
            for c in clips
            if (e := exhibits.get(c["exhibit_id"]))
            and (
                ("commercial" in scopes and e["purpose"] == "commercial")
                or ("public_access" in scopes and e["audience"] == "general_public")
            )
        ]
        return [], hit
    return [], []


def _delete_objects(archive: Storage, uris: Sequence[str], *, model_dirs: bool) -> list[str]:
    deleted = []
    for uri in uris:
        try:
            key = archive.key_of(uri)
        except StorageError:
            continue  # not in this archive: nothing of ours to delete
        keys = [o.key for o in archive.list(posixpath.dirname(key))] if model_dirs else [key]
        for k in keys:
            if archive.exists(k):
                archive.delete(k)
                deleted.append(archive.uri(k))
    return deleted


def _withdraw_requests(
    catalog: Catalog, archive: Storage, bearer_id: str, clip_ids: set[str], reason: str
) -> list[str]:
    """Texts whose clips are withdrawn say so (the API answers 410 for them), and the failed attempts kept
    for curators to hear, which are the bearer's voice too, are deleted."""
    if not catalog.exists("exhibit_requests"):
        return []
    rows = [r for r in catalog.read("exhibit_requests").to_pylist() if r["bearer_id"] == bearer_id]
    hit = sorted({r["request_id"] for r in rows if r["clip_id"] in clip_ids})
    if hit:
        why = f"'consent withdrawn: {reason.replace(chr(39), chr(39) * 2)}'"
        predicate = f"request_id IN ({_sql_list(hit)}) AND clip_id IN ({_sql_list(sorted(clip_ids))})"
        catalog.update("exhibit_requests", predicate, {"state": "'withdrawn'", "reason": why})
    deleted = []
    for exhibit_id in sorted({r["exhibit_id"] for r in rows}):
        mine = tuple(f"{r['request_id']}-" for r in rows if r["exhibit_id"] == exhibit_id)
        for obj in list(archive.list(f"exhibits/{exhibit_id}/failed")):
            if posixpath.basename(obj.key).startswith(mine):
                archive.delete(obj.key)
                deleted.append(archive.uri(obj.key))
    return deleted


def carry_out(
    catalog: Catalog,
    archive: Storage,
    bearer_id: str,
    scopes: Sequence[str],
    reason: str,
    *,
    flow_run_id: str | None = None,
) -> RevocationReport:
    """Record the revocation of ``scopes`` and remove every model and clip made under them."""
    new = revoke_scopes(catalog, bearer_id, scopes, reason, flow_run_id=flow_run_id)
    models, clips = affected(catalog, bearer_id, scopes)
    model_ids = [m["model_id"] for m in models]
    clip_ids = [c["clip_id"] for c in clips]
    if model_ids:
        catalog.update("models", f"model_id IN ({_sql_list(model_ids)})", {"status": "'revoked'"})
    if clip_ids:
        catalog.update("clips", f"clip_id IN ({_sql_list(clip_ids)})", {"status": "'withdrawn'"})
    deleted = _delete_objects(archive, [m["artifact_uri"] for m in models], model_dirs=True)
    clip_files = [c["uri"] for c in clips] + [c["manifest_uri"] for c in clips if c.get("manifest_uri")]
    deleted += _delete_objects(archive, clip_files, model_dirs=False)
    if clips or MODEL_SCOPES & set(scopes):
        deleted += _withdraw_requests(catalog, archive, bearer_id, set(clip_ids), reason)
    if MODEL_SCOPES & set(scopes):  # weights of trainings still running or killed: no model row names them yet
        for obj in list(archive.list(f"models/{bearer_id}/training/")):
            archive.delete(obj.key)
            deleted.append(archive.uri(obj.key))
    purged = []
    if clip_ids:
        catalog.delete("clips", f"clip_id IN ({_sql_list(clip_ids)})")
        catalog.purge("clips")
        purged.append("clips")
    if model_ids:
        catalog.delete("models", f"model_id IN ({_sql_list(model_ids)})")
        catalog.purge("models")
        purged.append("models")
    report = RevocationReport(
        bearer_id=bearer_id,
        scopes=tuple(scopes),
        reason=reason,
        new_consent_ids=tuple(r.consent_id for r in new),
        models_removed=tuple(model_ids),
        clips_removed=tuple(clip_ids),
        objects_deleted=tuple(deleted),
        tables_purged=tuple(purged),
    )
    events = [
        make_event("deletion", [oid], detail={"reason": reason, "kind": kind}, flow_run_id=flow_run_id)
        for kind, ids in (("model", model_ids), ("clip", clip_ids))
        for oid in ids
    ]
    events.append(
        make_event("consent revocation", [bearer_id], detail={"carried_out": report.to_dict()}, flow_run_id=flow_run_id)
    )
    catalog.append("events", events)
    return report


def erase(
    catalog: Catalog, archive: Storage, bearer_id: str, reason: str, *, flow_run_id: str | None = None
) -> RevocationReport:
    """Erase a person: withdraw every scope but preservation, remove all derived data (models, clips,
    derivatives, segments and their files) and delete ``people/`` and consent evidence. Originals stay under
    the preservation scope; the events that remain name only the pseudonymous id."""
    bearer_facts(catalog, bearer_id)
    withdrawn = tuple(s for s in SCOPES if s != "preserve")
    report = carry_out(catalog, archive, bearer_id, withdrawn, reason, flow_run_id=flow_run_id)
    recordings = [
        r["recording_id"]
        for r in catalog.read("recordings", columns=["recording_id", "bearer_id"]).to_pylist()
        if r["bearer_id"] == bearer_id
    ]
    deleted = list(report.objects_deleted)
    purged = list(report.tables_purged)
    if recordings:
        for prefix in ("working", "alignments"):
            for rid in recordings:
                for obj in list(archive.list(f"{prefix}/{rid}")):
                    archive.delete(obj.key)
                    deleted.append(archive.uri(obj.key))
        for table in ("derivatives", "segments"):
            if catalog.delete(table, f"recording_id IN ({_sql_list(recordings)})"):
                catalog.purge(table)
                purged.append(table)
    people = erase_person(archive, bearer_id)
    catalog.append(
        "events",
        [
            make_event(
                "erasure",
                [bearer_id],
                detail={"reason": reason, "objects_deleted": len(deleted) + len(people), "tables_purged": purged},
                flow_run_id=flow_run_id,
            )
        ],
    )
    return RevocationReport(
        **{
            **asdict(report),
            "objects_deleted": tuple(deleted),
            "tables_purged": tuple(purged),
            "people_data_deleted": tuple(people),
        }
    )
