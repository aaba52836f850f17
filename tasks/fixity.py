"""Fixity: SHA-256 of stored objects, and the archive-wide re-check of every original."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from catalog.events import make_event
from catalog.manifests import Event
from catalog.storage import Storage, sha256_stream
from catalog.tables import Catalog
from heirloom.errors import FixityError, ObjectNotFoundError, StorageError

ORIGINALS = "originals"
FixityStatus = Literal["ok", "mismatch", "missing", "unreadable"]


def original_key(sha256: str, ext: str) -> str:
    """``originals/<sha[:2]>/<sha>.<ext>``: the content address of a preservation master."""
    return f"{ORIGINALS}/{sha256[:2]}/{sha256}.{ext}"


def key_of_original_uri(uri: str) -> str:
    """The storage key of a recorded ``original_uri`` (stable if the archive root moves)."""
    marker = f"/{ORIGINALS}/"
    if marker not in uri:
        raise StorageError(uri, f"not an original's URI (no /{ORIGINALS}/ in it)")
    return ORIGINALS + "/" + uri.split(marker, 1)[1]


def sha256_of(storage: Storage, key: str) -> str:
    with storage.open_read(key) as f:
        return sha256_stream(f)[0]


def verify(storage: Storage, key: str, expected: str) -> None:
    """Raise :class:`FixityError` unless the object at ``key`` hashes to ``expected``."""
    actual = sha256_of(storage, key)
    if actual != expected:
        raise FixityError(storage.uri(key), expected, actual)


@dataclass(frozen=True, slots=True)
class FixityFinding:
    recording_id: str
    original_uri: str
    status: FixityStatus
    actual_sha256: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class FixityReport:
    checked: int
    findings: tuple[FixityFinding, ...]
    untracked: tuple[str, ...] = field(default=())

    @property
    def problems(self) -> list[FixityFinding]:
        return [f for f in self.findings if f.status != "ok"]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "ok": self.checked - len(self.problems),
            "problems": [
                {
                    "recording_id": f.recording_id,
                    "original_uri": f.original_uri,
                    "status": f.status,
                    "actual_sha256": f.actual_sha256,
                    "detail": f.detail,
                }
                for f in self.problems
            ],
            "untracked_originals": list(self.untracked),
        }


def check_one(archive: Storage, recording_id: str, original_uri: str) -> FixityFinding:
    try:
        key = key_of_original_uri(original_uri)
        actual = sha256_of(archive, key)
    except ObjectNotFoundError:
        return FixityFinding(recording_id, original_uri, "missing", detail="the original is gone; restore it")
    except StorageError as e:
        return FixityFinding(recording_id, original_uri, "unreadable", detail=str(e))
    if actual != recording_id:
        return FixityFinding(recording_id, original_uri, "mismatch", actual, "bytes changed; restore from a replica")
    return FixityFinding(recording_id, original_uri, "ok", actual)


def fixity_events(findings: list[FixityFinding], flow_run_id: str | None) -> list[Event]:
    return [
        make_event(
            "fixity check",
            [f.recording_id],
            "success" if f.status == "ok" else "failure",
            detail={"algorithm": "SHA-256", "status": f.status, "original_uri": f.original_uri, "detail": f.detail},
            flow_run_id=flow_run_id,
        )
        for f in findings
    ]


def untracked_originals(archive: Storage, known: set[str]) -> list[str]:
    """Objects under ``originals/`` with no ``recordings`` row (an ingest killed before its catalog commit)."""
    out = []
    for obj in archive.list(ORIGINALS):
        sha = obj.key.rsplit("/", 1)[-1].split(".", 1)[0]
        if sha not in known:
            out.append(archive.uri(obj.key))
    return out


def check_fixity(catalog: Catalog, archive: Storage, *, flow_run_id: str | None = None) -> FixityReport:
    """Re-hash every original in the catalog, write a fixity-check event for each, and report."""
    table = catalog.read("recordings", columns=["recording_id", "original_uri"]).to_pylist()
    findings = [check_one(archive, r["recording_id"], r["original_uri"]) for r in table]
    catalog.append("events", fixity_events(findings, flow_run_id))
    known = {r["recording_id"] for r in table}
    return FixityReport(
        checked=len(findings), findings=tuple(findings), untracked=tuple(untracked_originals(archive, known))
    )
