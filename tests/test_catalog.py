"""Delta catalog: schemas, validation before write, races, queries, events; local and on S3."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pytest

from catalog.events import log_events, make_event
from catalog.manifests import Bearer, Event, Recording
from catalog.query import run_query
from catalog.schemas import TABLES
from catalog.tables import Catalog
from heirloom.errors import CatalogError, ManifestError, QueryError, TableNotFoundError

SHA = "ab" * 32


def recording(rid: str = SHA, **kw) -> Recording:
    base = dict(
        recording_id=rid,
        bearer_id="b-1",
        collection="c1",
        source_uri="/in/a.wav",
        original_uri=f"/arch/originals/{rid[:2]}/{rid}.wav",
        format="wav",
        codec="pcm_16",
        sample_rate=16000,
        channels=1,
        duration_s=1.5,
        size_bytes=48044,
    )
    return Recording(**{**base, **kw})


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def cat(request: pytest.FixtureRequest, tmp_path: Path) -> Catalog:
    uri = str(tmp_path / "archive") if request.param == "local" else request.getfixturevalue("s3_env") + "/arch"
    c = Catalog.open(uri)
    c.init()
    return c


def test_init_creates_every_table_once(cat: Catalog) -> None:
    assert all(cat.exists(n) for n in TABLES)
    assert cat.init() == []
    for name, schema in TABLES.items():
        assert cat.read(name).schema == schema


@pytest.mark.parametrize("record", [Bearer(bearer_id="b"), recording(), make_event("ingestion", ["x"])])
def test_records_match_their_table_schema(record) -> None:
    fields = {f.name for f in dataclasses.fields(record)}
    assert fields == set(TABLES[record.TABLE].names)
    assert type(record).from_dict(record.to_dict()) == record
    assert record.to_dict()["kind"] == record.KIND


def test_append_and_read_back(cat: Catalog) -> None:
    cat.append("recordings", [recording(tk_labels=("tk_attribution",))])
    rows = cat.read("recordings").to_pylist()
    assert rows[0]["recording_id"] == SHA and rows[0]["tk_labels"] == ["tk_attribution"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (recording(rid="not-a-hash"), "SHA-256"),
        (recording(sample_rate=10), "sample_rate"),
        (recording(duration_s=float("nan")), "duration_s"),
        (recording(bearer_id="bad id!"), "not a valid id"),
        (recording(original_uri="/somewhere/else.wav"), "does not name"),
    ],
)
def test_invalid_records_never_reach_a_table(cat: Catalog, bad: Recording, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        cat.append("recordings", [recording("cd" * 32), bad])
    assert cat.read("recordings").num_rows == 0


def test_wrong_table_and_unknown_table(cat: Catalog) -> None:
    with pytest.raises(CatalogError, match="cannot be written"):
        cat.append("bearers", [recording()])
    with pytest.raises(TableNotFoundError, match="tables are"):
        cat.read("recordingz")


def test_insert_new_is_idempotent(cat: Catalog) -> None:
    assert cat.insert_new("recordings", [recording()], key="recording_id") == 1
    assert cat.insert_new("recordings", [recording(), recording("cd" * 32)], key="recording_id") == 1
    assert cat.read("recordings").num_rows == 2


def test_concurrent_appends_all_land(tmp_path: Path) -> None:
    cat = Catalog.open(str(tmp_path))
    cat.init()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: log_events(cat, [make_event("ingestion", [str(i)])]), range(16)))
    assert cat.read("events").num_rows == 16


def test_delete_then_query(cat: Catalog) -> None:
    cat.append("recordings", [recording(), recording("cd" * 32)])
    assert cat.delete("recordings", f"recording_id = '{SHA}'") == 1
    rows = run_query(cat, "select recording_id from recordings").to_pylist()
    assert rows == [{"recording_id": "cd" * 32}]
    assert cat.read("recordings", version=1).num_rows == 2  # time travel keeps history


def test_replace_swaps_matching_rows_in_one_commit(cat: Catalog) -> None:
    other = "cd" * 32
    cat.append("recordings", [recording(), recording(other)])
    before = cat.table("recordings").version()
    new = [recording(title="again"), recording("ef" * 32, collection="c1")]
    predicate = f"recording_id IN ('{SHA}', '{'ef' * 32}')"
    assert cat.replace("recordings", predicate, new) == 2
    assert cat.table("recordings").version() == before + 1  # one commit: never a moment without the rows
    rows = {r["recording_id"]: r for r in cat.read("recordings").to_pylist()}
    assert set(rows) == {SHA, other, "ef" * 32} and rows[SHA]["title"] == "again"
    assert cat.replace("recordings", f"recording_id = '{other}'", []) == 0
    assert other not in {r["recording_id"] for r in cat.read("recordings").to_pylist()}


def test_query_joins_and_refuses_files(cat: Catalog) -> None:
    cat.append("bearers", [Bearer(bearer_id="b-1", dialect="en-029")])
    cat.append("recordings", [recording()])
    out = run_query(cat, "select b.dialect, count(*) n from recordings r join bearers b using (bearer_id) group by 1")
    assert out.to_pylist() == [{"dialect": "en-029", "n": 1}]
    with pytest.raises(QueryError, match="file system operations are disabled"):
        run_query(cat, "select * from read_csv('/etc/passwd')")
    with pytest.raises(QueryError, match="query failed"):
        run_query(cat, "select nope from recordings")


def test_events_carry_agent_and_detail(cat: Catalog) -> None:
    log_events(cat, [make_event("fixity check", [SHA], "failure", detail={"status": "missing"}, flow_run_id="r1")])
    row = cat.read("events").to_pylist()[0]
    assert row["agent"].startswith("heirloom@") and row["flow_run_id"] == "r1"
    assert '"missing"' in row["detail"]
    with pytest.raises(ManifestError, match="type"):
        log_events(cat, [Event(event_id="e", type="made-up", agent="x", object_ids=("a",), outcome="success")])


def test_missing_catalog_says_run_init(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="heirloom init"):
        Catalog.open(str(tmp_path)).read("recordings")


def test_read_casts_to_declared_schema(cat: Catalog) -> None:
    cat.append("recordings", [recording()])
    assert cat.read("recordings", columns=["recording_id"]).schema.field("recording_id").type == pa.string()


def test_a_caching_catalog_sees_every_write_made_elsewhere(tmp_path: Path) -> None:
    writer = Catalog.open(str(tmp_path))
    writer.init()
    server = Catalog.open(str(tmp_path), cache_reads=True)
    assert server.rows("bearers") == []
    writer.append("bearers", [Bearer(bearer_id="b-1", status="living")])
    assert [r["bearer_id"] for r in server.rows("bearers")] == ["b-1"]
    assert server.rows("bearers") is server.rows("bearers")  # no re-read while the table is unchanged
    writer.delete("bearers", "bearer_id = 'b-1'")
    assert server.read("bearers").num_rows == 0 and server.read("bearers", columns=["status"]).num_columns == 1
