"""Personal data outside the catalog: ``people/<bearer_id>.json`` and ``consent-evidence/<bearer_id>/``.

The catalog holds pseudonymous ids only; names, contacts and consent evidence live here, where erasure
deletes them outright.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from catalog.storage import Storage, sha256_stream
from heirloom.errors import ConsentError, ObjectExistsError

PEOPLE = "people"
EVIDENCE = "consent-evidence"


def person_key(bearer_id: str) -> str:
    return f"{PEOPLE}/{bearer_id}.json"


def write_person(archive: Storage, bearer_id: str, details: dict[str, Any]) -> str:
    """Store a bearer's personal details (name, contacts, custodians' names); returns the URI."""
    archive.put(person_key(bearer_id), json.dumps({"bearer_id": bearer_id, **details}, indent=2).encode())
    return archive.uri(person_key(bearer_id))


def evidence_key(bearer_id: str, sha256: str, suffix: str) -> str:
    return f"{EVIDENCE}/{bearer_id}/{sha256}{suffix}"


def store_evidence(archive: Storage, bearer_id: str, path: Path) -> str:
    """Copy a consent evidence file (signed form, recording of oral consent) into the archive; returns its
    SHA-256, which the consent record carries."""
    if not path.is_file():
        raise ConsentError(bearer_id, f"evidence file {path} does not exist")
    with open(path, "rb") as f:
        sha, _ = sha256_stream(f)
    try:
        with open(path, "rb") as f:
            archive.create(evidence_key(bearer_id, sha, path.suffix.lower()), f)
    except ObjectExistsError:
        pass  # the same evidence, stored before
    return sha


def find_evidence(archive: Storage, bearer_id: str, sha256: str) -> str | None:
    """The key of stored evidence with this hash in its name, if any (its content is checked by the audit)."""
    for obj in archive.list(f"{EVIDENCE}/{bearer_id}"):
        if obj.key.rsplit("/", 1)[-1].startswith(sha256):
            return obj.key
    return None


def erase_person(archive: Storage, bearer_id: str) -> list[str]:
    """Delete the bearer's personal details and consent evidence; returns the URIs deleted."""
    keys = [person_key(bearer_id)] if archive.exists(person_key(bearer_id)) else []
    keys += [o.key for o in archive.list(f"{EVIDENCE}/{bearer_id}")]
    for key in keys:
        archive.delete(key)
    return [archive.uri(k) for k in keys]
