"""The catalog: Delta Lake tables under ``<archive>/catalog/<table>``, on local disk or S3.

Writers validate every record first, then commit; a commit that loses a race with another flow run
(``CommitFailedError``) is retried against the new table version. Reads go through deltalake's own query
engine (QueryBuilder) and return whole Arrow tables: filtered reads through pyarrow trip on string_view
columns after a delete, and a process that read through ``to_pyarrow_table`` (deltalake 1.6 with pyarrow 26)
aborts at exit about half the time ("terminate called without an active exception").
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError
from deltalake.exceptions import TableNotFoundError as DeltaTableNotFound

from catalog.manifests import Record
from catalog.schemas import TABLES
from catalog.storage import Storage, open_storage
from catalog.validate import validate
from heirloom.errors import CatalogError, TableNotFoundError

CATALOG_PREFIX = "catalog"
_RETRIES = 12
T = TypeVar("T")


def _with_retry(what: str, fn: Callable[[], T]) -> T:
    """Run a Delta commit, retrying with jittered back-off when a concurrent writer won the race."""
    for attempt in range(_RETRIES):
        try:
            return fn()
        except CommitFailedError as e:
            if attempt == _RETRIES - 1:
                raise CatalogError(f"{what}: gave up after {_RETRIES} commit conflicts ({e}); re-run it") from e
            time.sleep(min(2.0, 0.02 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def records_to_table(name: str, records: Sequence[Record]) -> pa.Table:
    schema = TABLES[name]
    for r in records:
        if r.TABLE != name:
            raise CatalogError(f"a {r.KIND} record cannot be written to table {name!r} (it goes to {r.TABLE!r})")
        validate(r)
    return pa.Table.from_pylist([r.to_row() for r in records], schema=schema)


class Catalog:
    """The Delta tables of one archive.

    >>> import tempfile
    >>> cat = Catalog(open_storage(tempfile.mkdtemp()))
    >>> sorted(cat.init())[:2]
    ['bearers', 'clips']
    """

    def __init__(self, storage: Storage, *, cache_reads: bool = False) -> None:
        """``cache_reads`` keeps each table's current rows in memory and re-reads a table only when its Delta
        version has moved (a server reads the same small tables on every request: a whole read costs 17-32 ms,
        checking the version under 1 ms)."""
        self.storage = storage
        self._options = storage.delta_storage_options()
        self._cache: dict[str, tuple[DeltaTable, int, pa.Table, list[dict[str, Any]]]] | None = (
            {} if cache_reads else None
        )
        self._cache_locks: dict[str, threading.Lock] = {name: threading.Lock() for name in TABLES}

    @classmethod
    def open(cls, archive: str, *, cache_reads: bool = False) -> Catalog:
        return cls(open_storage(archive), cache_reads=cache_reads)

    def uri(self, name: str) -> str:
        return self.storage.table_uri(f"{CATALOG_PREFIX}/{name}")

    def _check_name(self, name: str) -> None:
        if name not in TABLES:
            raise TableNotFoundError(name, sorted(TABLES))

    def init(self) -> list[str]:
        """Create every missing table; returns the names created. Safe to run again."""
        ensure = getattr(self.storage, "ensure_bucket", None)
        if ensure is not None:
            ensure()
        created = []
        for name, schema in TABLES.items():
            if not self.exists(name):
                DeltaTable.create(self.uri(name), schema=schema, mode="ignore", storage_options=self._options)
                created.append(name)
            else:
                self._add_missing_columns(name, schema)
        return created

    def _add_missing_columns(self, name: str, schema: pa.Schema) -> None:
        """Bring a table made by an older heirloom up to ``schema``: its new columns, all nullable, are added."""
        have = set(self.table(name).schema().to_arrow().names)
        missing = [f for f in schema if f.name not in have]
        if not missing:
            return
        if any(not f.nullable for f in missing):
            raise CatalogError(
                f"table {name} lacks required column(s) {', '.join(f.name for f in missing if not f.nullable)}; "
                "a column added to an existing table must be nullable (catalog/schemas.py)"
            )
        fields = list(DeltaSchema.from_arrow(pa.schema(missing)).fields)
        _with_retry(f"add columns to {name}", lambda: self.table(name).alter.add_columns(fields))

    def exists(self, name: str) -> bool:
        self._check_name(name)
        return DeltaTable.is_deltatable(self.uri(name), storage_options=self._options)

    def table(self, name: str, version: int | None = None) -> DeltaTable:
        self._check_name(name)
        try:
            return DeltaTable(self.uri(name), version=version, storage_options=self._options)
        except DeltaTableNotFound as e:
            raise CatalogError(
                f"catalog table {name!r} does not exist at {self.uri(name)}; run `heirloom init` first"
            ) from e

    def read(
        self, name: str, columns: list[str] | None = None, version: int | None = None, as_of: datetime | None = None
    ) -> pa.Table:
        """The whole table (or ``columns``), now, at a ``version``, or as it was at instant ``as_of``.

        Before the table's first commit, ``as_of`` gives an empty table.
        """
        if self._cache is not None and version is None and as_of is None:
            table = self._cached(name)[0]
            return table if columns is None else table.select(columns)
        dt = self.table(name, version=version)
        if as_of is not None:
            first = min(h["timestamp"] for h in dt.history() if "timestamp" in h)
            if as_of.timestamp() * 1000 < first:
                return TABLES[name].empty_table().select(columns or TABLES[name].names)
            dt.load_as_version(as_of)
        return self._query(name, dt, columns)

    def _query(self, name: str, dt: DeltaTable, columns: list[str] | None) -> pa.Table:
        select = ", ".join(f'"{c}"' for c in columns) if columns else "*"
        result = QueryBuilder().register("t", dt).execute(f"SELECT {select} FROM t").read_all()
        schema = TABLES[name] if columns is None else pa.schema([TABLES[name].field(c) for c in columns])
        return pa.table(result).select(schema.names).cast(schema)

    def rows(self, name: str) -> list[dict[str, Any]]:
        """The table's current rows as dicts; with ``cache_reads`` the same list until the table changes, so
        callers must not modify it."""
        if self._cache is None:
            return self.read(name).to_pylist()
        return self._cached(name)[1]

    def _cached(self, name: str) -> tuple[pa.Table, list[dict[str, Any]]]:
        assert self._cache is not None
        with self._cache_locks[name]:
            held = self._cache.get(name)
            dt = held[0] if held else self.table(name)
            if held:
                dt.update_incremental()
            version = dt.version()
            if held and held[1] == version:
                return held[2], held[3]
            table = self._query(name, dt, None)
            rows = table.to_pylist()
            self._cache[name] = (dt, version, table, rows)
            return table, rows

    def append(self, name: str, records: Sequence[Record]) -> int:
        """Validate and append ``records`` in one commit; returns how many were written."""
        if not records:
            return 0
        data = records_to_table(name, records)
        uri = self.uri(name)
        self.table(name)
        _with_retry(
            f"append to {name}",
            lambda: write_deltalake(uri, data, mode="append", storage_options=self._options),
        )
        return len(records)

    def replace(self, name: str, predicate: str, records: Sequence[Record]) -> int:
        """In one commit, delete the rows matching a SQL ``predicate`` and write ``records`` (each of which must
        match it): a reader sees the old rows or the new, never neither. Returns how many were written."""
        data = records_to_table(name, records)
        uri = self.uri(name)
        self.table(name)
        _with_retry(
            f"replace rows of {name}",
            lambda: write_deltalake(uri, data, mode="overwrite", predicate=predicate, storage_options=self._options),
        )
        return len(records)

    def insert_new(self, name: str, records: Sequence[Record], key: str | tuple[str, ...]) -> int:
        """Insert only the records whose ``key`` (a column or several) is not yet in the table: an idempotent,
        race-safe append. Returns the number of rows the merge inserted.
        """
        if not records:
            return 0
        data = records_to_table(name, records)
        predicate = " AND ".join(f"t.{k} = s.{k}" for k in ((key,) if isinstance(key, str) else key))

        def merge() -> int:
            metrics = (
                self.table(name)
                .merge(source=data, predicate=predicate, source_alias="s", target_alias="t")
                .when_not_matched_insert_all()
                .execute()
            )
            return int(metrics.get("num_target_rows_inserted", 0))

        return _with_retry(f"insert into {name}", merge)

    def delete(self, name: str, predicate: str) -> int:
        """Delete the rows matching a SQL ``predicate``; returns how many were deleted."""

        def run() -> int:
            metrics = self.table(name).delete(predicate)
            return int(metrics.get("num_deleted_rows", 0))

        return _with_retry(f"delete from {name}", run)

    def update(self, name: str, predicate: str, updates: dict[str, str]) -> int:
        """Set columns (SQL expressions) on the rows matching ``predicate``; returns how many changed."""

        def run() -> int:
            metrics = self.table(name).update(updates=updates, predicate=predicate)
            return int(metrics.get("num_updated_rows", 0))

        return _with_retry(f"update {name}", run)

    def purge(self, name: str) -> None:
        """Remove deleted rows for good: vacuum every unreferenced data file and drop the old log entries
        (after a checkpoint), so no old Parquet file or log entry still holds them. Time travel of this
        table before now is given up; other tables keep theirs."""
        keep = {
            "delta.logRetentionDuration": "interval 30 days",
            "delta.deletedFileRetentionDuration": "interval 7 days",
        }
        now = {k: "interval 0 days" for k in keep}

        def run() -> None:
            dt = self.table(name)
            dt.alter.set_table_properties(now)
            dt = self.table(name)
            dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
            dt.create_checkpoint()
            dt.cleanup_metadata()
            self.table(name).alter.set_table_properties(keep)

        _with_retry(f"purge {name}", run)


def latest_derivatives(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """The newest ``derivatives`` row of each recording, by recording id."""
    latest: dict[str, dict[str, Any]] = {}
    for d in sorted(catalog.read("derivatives").to_pylist(), key=lambda d: d["created_at"]):
        latest[d["recording_id"]] = d
    return latest
