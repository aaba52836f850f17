"""Exhibits, tokens, requests and approval (tasks.exhibits), on a real local catalog."""

from __future__ import annotations

import json
from datetime import timedelta

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from catalog.manifests import utc_now
from catalog.schemas import EXHIBITS
from catalog.storage import open_storage
from catalog.tables import Catalog
from heirloom.errors import (
    DuplicateTextError,
    ExhibitNotFoundError,
    ExhibitRefusedError,
    RequestStateError,
    RequestTooLargeError,
    TokenError,
)
from tasks.consent import grant
from tasks.exhibits import (
    RequestLimits,
    add_exhibit,
    approve,
    authenticate,
    preapprove_transcripts,
    reject,
    retire_exhibit,
    rotate_token,
    rows_of,
    submit,
)
from tests.consent_factory import add_bearer, add_recording

SCOPES = ["voice_synthesis", "exhibit_generation", "model_training"]


@pytest.fixture
def archive(tmp_path):
    store = open_storage(str(tmp_path / "archive"))
    cat = Catalog(store)
    cat.init()
    add_bearer(cat, "b-1")
    grant(cat, store, bearer_id="b-1", grantor_type="self", grantor_id="b-1", scopes=SCOPES, audiences=["public"])
    return cat, store


def test_a_token_works_once_given_and_stops_when_rotated_or_retired(archive) -> None:
    cat, _ = archive
    exhibit, token = add_exhibit(cat, "kiosk-1", venue="Hall 3", audience="public", purpose="education")
    assert token not in json.dumps(cat.read("exhibits").to_pylist(), default=str)  # only its hash is kept
    assert authenticate(cat, token).exhibit_id == "kiosk-1"
    with pytest.raises(TokenError, match="wrong"):
        authenticate(cat, token + "x")
    with pytest.raises(TokenError, match="no exhibit token"):
        authenticate(cat, None)
    _, new = rotate_token(cat, "kiosk-1")
    with pytest.raises(TokenError, match="wrong or was rotated"):
        authenticate(cat, token)
    assert authenticate(cat, new).exhibit_id == "kiosk-1"
    retire_exhibit(cat, "kiosk-1")
    with pytest.raises(TokenError, match="retired"):
        authenticate(cat, new)


def test_an_expired_exhibit_token_stops_working(archive) -> None:
    cat, _ = archive
    now = utc_now()
    _, token = add_exhibit(
        cat,
        "old",
        venue="v",
        audience="public",
        purpose="education",
        valid_from=now - timedelta(days=10),
        valid_until=now - timedelta(days=1),
    )
    with pytest.raises(TokenError, match="closed"):
        authenticate(cat, token)


def test_a_request_waits_for_approval_then_is_queued(archive) -> None:
    cat, _ = archive
    exhibit, _ = add_exhibit(cat, "kiosk-1", venue="Hall", audience="public", purpose="education", bearer_ids=["b-1"])
    rows = submit(cat, exhibit, "b-1", ["The water is wide,  I cannot get over.", "And neither have I wings"], "mp3")
    assert [r.state for r in rows] == ["awaiting_approval"] * 2
    assert rows[0].text == "The water is wide, I cannot get over."
    assert rows[0].approvals_needed == 1
    approved = approve(cat, rows[0].request_id, by="cur-1", item=1)
    assert [(r.item, r.state) for r in approved] == [(1, "queued")]
    reject(cat, rows[0].request_id, by="cur-1", reason="not this verse", item=0)
    states = {r.item: (r.state, r.reason) for r in rows_of(cat, request_id=rows[0].request_id)}
    assert states == {0: ("rejected", "not this verse"), 1: ("queued", None)}
    with pytest.raises(RequestStateError, match="not awaiting approval"):
        approve(cat, rows[0].request_id, by="cur-2", item=1)


def test_community_review_needs_a_second_different_approver_for_the_community(archive) -> None:
    cat, store = archive
    add_recording(cat, store, "b-1", labels=("tk_culturally_sensitive",))
    exhibit, _ = add_exhibit(cat, "kiosk-1", venue="Hall", audience="public", purpose="education")
    # the label asks for a community authority's grant for synthesis, so grant it
    grant(
        cat,
        store,
        bearer_id="b-1",
        grantor_type="community_authority",
        grantor_id="kil",
        scopes=SCOPES,
        tk_labels=["tk_culturally_sensitive"],
        audiences=["public"],
    )
    (row,) = submit(cat, exhibit, "b-1", ["a line"], "wav")
    assert row.approvals_needed == 2
    (after,) = approve(cat, row.request_id, by="cur-1")
    assert after.state == "awaiting_approval"
    with pytest.raises(RequestStateError, match="second person"):
        approve(cat, row.request_id, by="cur-1", role="community")
    (after,) = approve(cat, row.request_id, by="cur-2")
    assert after.state == "awaiting_approval"  # two curators are not a community's review
    (after,) = approve(cat, row.request_id, by="elder-1", role="community")
    assert after.state == "queued"
    assert [a["role"] for a in json.loads(after.approvals)] == ["curator", "curator", "community"]


def test_requests_are_refused_with_the_reasons(archive) -> None:
    cat, _ = archive
    exhibit, _ = add_exhibit(cat, "kiosk-1", venue="Hall", audience="schools", purpose="education")
    with pytest.raises(ExhibitRefusedError) as refused:
        submit(cat, exhibit, "b-1", ["a line"], "wav")
    assert any("audience 'schools'" in r for r in refused.value.reasons)
    add_bearer(cat, "b-2")
    open_, _ = add_exhibit(cat, "kiosk-2", venue="Hall", audience="public", purpose="education", bearer_ids=["b-1"])
    with pytest.raises(ExhibitRefusedError, match="not registered for bearer b-2"):
        submit(cat, open_, "b-2", ["a line"], "wav")
    with pytest.raises(ExhibitRefusedError, match="format"):
        submit(cat, open_, "b-1", ["a line"], "aiff")
    with pytest.raises(RequestTooLargeError, match="at most 2"):
        submit(cat, open_, "b-1", ["a", "b", "c"], "wav", limits=RequestLimits(max_texts=2))
    with pytest.raises(RequestTooLargeError, match="characters"):
        submit(cat, open_, "b-1", ["x" * 50], "wav", limits=RequestLimits(max_chars=10))
    submit(cat, open_, "b-1", ["a line"], "wav")
    with pytest.raises(DuplicateTextError, match="already requested"):
        submit(cat, open_, "b-1", ["a   line"], "wav")
    with pytest.raises(DuplicateTextError, match="twice"):
        submit(cat, open_, "b-1", ["new", "new"], "wav")
    submit(cat, open_, "b-1", ["a line"], "flac")  # another format is another clip
    with pytest.raises(ExhibitNotFoundError):
        approve(cat, "rq-none", by="cur-1")


def test_init_adds_new_columns_to_an_older_archives_table(tmp_path) -> None:
    store = open_storage(str(tmp_path / "archive"))
    cat = Catalog(store)
    old = pa.schema(
        [
            f
            for f in EXHIBITS
            if f.name in ("exhibit_id", "venue", "audience", "purpose", "token_sha256", "valid_from", "valid_until")
        ]
    )
    DeltaTable.create(cat.uri("exhibits"), schema=old)
    cat.init()
    assert cat.read("exhibits").schema.names == EXHIBITS.names
    exhibit, token = add_exhibit(cat, "k", venue="v", audience="public", purpose="education")
    assert authenticate(cat, token) == exhibit


def test_texts_of_the_bearers_own_transcripts_arrive_approved_where_a_curator_preapproved_them(archive) -> None:
    cat, store = archive
    rid = add_recording(cat, store, "b-1")
    cat.update("recordings", f"recording_id = '{rid}'", {"transcript": "'The water is wide, I cannot get over.'"})
    exhibit, _ = add_exhibit(cat, "kiosk-1", venue="Hall", audience="public", purpose="education")
    before = submit(cat, exhibit, "b-1", ["I cannot get over"], "wav")
    assert before[0].state == "awaiting_approval"
    exhibit = preapprove_transcripts(cat, "kiosk-1", "b-1", by="cur-1")
    rows = submit(cat, exhibit, "b-1", ["the water is WIDE", "the water is deep", "is wide"], "mp3")
    assert [r.state for r in rows] == ["queued", "awaiting_approval", "awaiting_approval"]
    assert json.loads(rows[0].approvals)[0] | {"at": None} == {
        "by": "cur-1",
        "role": "curator",
        "at": None,
        "preapproved": "transcript",
    }
