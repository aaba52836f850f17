"""A collection as an archivist delivers it: recordings plus ``manifest.csv``, one row per recording.

Columns: ``file`` and ``bearer_id`` (required); ``title``, ``transcript`` or ``transcript_file`` (a text
file in the collection), ``language``, ``dialect``, ``tk_labels`` (separated by ``;``), ``recorded_at``
(ISO 8601: ``1974``, ``1974-05``, ``1974-05-02`` or a date-time), ``notes``.

A problem with the whole manifest (not UTF-8, no header, missing or unknown columns) raises
:class:`ManifestError`; a problem with one row is returned beside the good rows, so the rest of the batch
goes on.

>>> rows, problems = parse_manifest("file,bearer_id\\nsong.wav,b01\\n", where="manifest.csv")
>>> rows[0].file, problems
('song.wav', [])
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
from dataclasses import dataclass
from datetime import datetime

from catalog.validate import ID_PATTERN
from heirloom.errors import ManifestError

MANIFEST_NAME = "manifest.csv"
REQUIRED = ("file", "bearer_id")
OPTIONAL = ("title", "transcript", "transcript_file", "language", "dialect", "tk_labels", "recorded_at", "notes")
COLUMNS = REQUIRED + OPTIONAL
_LABEL = re.compile(r"^[a-z0-9][a-z0-9_:.-]*$")
_PARTIAL_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


@dataclass(frozen=True, slots=True)
class ManifestRow:
    line: int
    file: str
    bearer_id: str
    title: str | None = None
    transcript: str | None = None
    transcript_file: str | None = None
    language: str | None = None
    dialect: str | None = None
    tk_labels: tuple[str, ...] = ()
    recorded_at: str | None = None
    notes: str | None = None


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    file: str | None
    reason: str


def collection_path(path: str, *, what: str) -> str:
    """Normalise a path named in the manifest; refuse one that leaves the collection."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        raise ManifestError(what, f"{path!r} must be a relative path inside the collection")
    norm = posixpath.normpath(path)
    if norm == ".." or norm.startswith("../") or norm == ".":
        raise ManifestError(what, f"{path!r} points outside the collection; name a file inside it")
    return norm


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _check_date(value: str) -> None:
    partial = {4: "%Y", 7: "%Y-%m", 10: "%Y-%m-%d"}
    try:
        if _PARTIAL_DATE.match(value):
            datetime.strptime(value, partial[len(value)])
        else:
            datetime.fromisoformat(value)
    except ValueError as e:
        raise ValueError(f"recorded_at {value!r} is not ISO 8601 (1974, 1974-05, 1974-05-02 or a date-time)") from e


def _row(line: int, raw: dict[str, str | None]) -> ManifestRow:
    file = collection_path((raw.get("file") or "").strip(), what=f"line {line} file")
    bearer = (raw.get("bearer_id") or "").strip()
    if not ID_PATTERN.match(bearer):
        raise ValueError(f"bearer_id {bearer!r} is not a valid id (1-64 letters, digits, '.', '_', '-')")
    transcript = _clean(raw.get("transcript"))
    transcript_file = _clean(raw.get("transcript_file"))
    if transcript and transcript_file:
        raise ValueError("give transcript or transcript_file, not both")
    if transcript_file:
        transcript_file = collection_path(transcript_file, what=f"line {line} transcript_file")
    labels = tuple(dict.fromkeys(t.strip().lower() for t in (raw.get("tk_labels") or "").split(";") if t.strip()))
    for label in labels:
        if not _LABEL.match(label):
            raise ValueError(f"tk_label {label!r} must be lowercase letters, digits, '_', ':', '.', '-'")
    recorded_at = _clean(raw.get("recorded_at"))
    if recorded_at:
        _check_date(recorded_at)
    return ManifestRow(
        line=line,
        file=file,
        bearer_id=bearer,
        title=_clean(raw.get("title")),
        transcript=transcript,
        transcript_file=transcript_file,
        language=_clean(raw.get("language")),
        dialect=_clean(raw.get("dialect")),
        tk_labels=labels,
        recorded_at=recorded_at,
        notes=_clean(raw.get("notes")),
    )


def decode_manifest(data: bytes, *, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ManifestError(where, f"is not UTF-8 text (byte {e.start}); save it as UTF-8 CSV") from e


def parse_manifest(text: str, *, where: str) -> tuple[list[ManifestRow], list[RowProblem]]:
    """Parse manifest CSV text into good rows and row problems; raise for a malformed manifest."""
    if "\x00" in text:
        raise ManifestError(where, "contains NUL bytes: it is not a CSV text file")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        header = reader.fieldnames
    except csv.Error as e:
        raise ManifestError(where, f"is not valid CSV: {e}") from e
    if not header:
        raise ManifestError(where, f"is empty; it needs a header row with at least {', '.join(REQUIRED)}")
    names = [h.strip() for h in header]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise ManifestError(where, f"has no {', '.join(missing)} column; its header is {names}")
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise ManifestError(where, f"unknown column(s) {unknown}; the columns are {list(COLUMNS)}")
    if len(set(names)) != len(names):
        raise ManifestError(where, f"repeats a column in its header {names}")
    reader.fieldnames = names
    rows: list[ManifestRow] = []
    problems: list[RowProblem] = []
    seen: dict[str, int] = {}
    try:
        for raw in reader:
            line = reader.line_num
            if not any((v or "").strip() for k, v in raw.items() if k is not None):
                continue
            name = (raw.get("file") or "").strip() or None
            if None in raw or any(v is None for v in raw.values()):
                problems.append(
                    RowProblem(line, name, f"row has a different number of fields than the header ({len(names)})")
                )
                continue
            try:
                row = _row(line, raw)
            except (ValueError, ManifestError) as e:
                reason = e.reason if isinstance(e, ManifestError) else str(e)
                problems.append(RowProblem(line, name, f"line {line}: {reason}"))
                continue
            if row.file in seen:
                problems.append(
                    RowProblem(line, row.file, f"line {line}: {row.file} is already listed on line {seen[row.file]}")
                )
                continue
            seen[row.file] = line
            rows.append(row)
    except csv.Error as e:
        raise ManifestError(where, f"is not valid CSV near line {reader.line_num}: {e}") from e
    return rows, problems


def render_manifest(rows: list[ManifestRow]) -> str:
    """Write rows back as manifest CSV (the demo and tests build collections with it)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: (";".join(r.tk_labels) if c == "tk_labels" else (getattr(r, c) or "")) for c in COLUMNS})
    return out.getvalue()
