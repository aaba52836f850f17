"""Curators' SQL over the catalog: DuckDB reads the Delta tables through Arrow.

Only the tables a query names are read. DuckDB runs with external access off, so a query can read the
catalog and nothing else on the machine (no ``read_csv('/etc/...')``, no ``COPY ... TO``).
"""

from __future__ import annotations

import re

import duckdb
import pyarrow as pa

from catalog.schemas import TABLES
from catalog.tables import Catalog
from heirloom.errors import QueryError


def tables_named(sql: str) -> list[str]:
    return [name for name in TABLES if re.search(rf"\b{name}\b", sql, flags=re.IGNORECASE)]


def run_query(catalog: Catalog, sql: str) -> pa.Table:
    """Run ``sql`` over the catalog tables and return the result as Arrow.

    >>> import tempfile
    >>> cat = Catalog.open(tempfile.mkdtemp()); _ = cat.init()
    >>> run_query(cat, "select count(*) as n from recordings").to_pylist()
    [{'n': 0}]
    """
    if not sql.strip():
        raise QueryError("the query is empty; give a SQL SELECT over the catalog tables")
    con = duckdb.connect(":memory:")
    try:
        for name in tables_named(sql):
            con.register(name, catalog.read(name))
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        return con.execute(sql).to_arrow_table()
    except duckdb.Error as e:
        raise QueryError(f"query failed: {e}. Tables: {', '.join(TABLES)}") from e
    finally:
        con.close()
