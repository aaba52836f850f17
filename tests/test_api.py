"""The exhibit API over a real local archive: every status code it documents, token scoping, Range, ETag,
Content Credentials, and schemathesis against its OpenAPI document."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient

from catalog.storage import open_storage
from catalog.tables import Catalog
from flows.api import create_app
from tasks.consent import carry_out, grant
from tasks.exhibits import add_exhibit, approve
from tasks.generation import Voice, generate_text, queued
from tasks.provenance import keygen, site_signer
from tasks.watermark import WatermarkKey
from tests.consent_factory import add_bearer, add_model
from tests.test_generation import LINE, espeak_voice

SCOPES = ["voice_synthesis", "exhibit_generation", "model_training"]


@pytest.fixture
def api(tmp_path, monkeypatch):
    archive = str(tmp_path / "archive")
    identity = keygen(tmp_path / "identity")
    monkeypatch.setenv("HEIRLOOM_PROVENANCE_DIR", identity.folder)
    monkeypatch.setenv("HEIRLOOM_EXHIBIT_RATE_BURST", "100000")  # the schema runs make hundreds of calls
    store = open_storage(archive)
    cat = Catalog(store)
    cat.init()
    add_bearer(cat, "b-1")
    add_bearer(cat, "b-2")
    grant(
        cat, store, bearer_id="b-1", grantor_type="self", grantor_id="b-1", scopes=SCOPES, audiences=["public"],
        credit_line="Voix de b-1, Kilbride", disclosure_text="A synthetic voice, made with consent.",
    )  # fmt: skip
    _, token = add_exhibit(cat, "kiosk-1", venue="Hall", audience="public", purpose="education")
    _, other = add_exhibit(cat, "kiosk-2", venue="Hall", audience="public", purpose="education")
    client = TestClient(create_app(archive))
    return client, cat, store, token, other, identity


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ready_clip(api) -> tuple[str, str]:
    """A request of kiosk-1 for LINE, approved and generated; returns (request id, clip id)."""
    client, cat, store, token, _, identity = api
    answer = client.post(
        "/v1/exhibits/kiosk-1/requests",
        json={"bearer_id": "b-1", "texts": [LINE], "format": "mp3"},
        headers=auth(token),
    )
    assert answer.status_code == 202, answer.text
    request_id = answer.json()["request_id"]
    approve(cat, request_id, by="cur-1")
    (row,) = queued(cat, request_id=request_id)
    voice = Voice(model_id="m-b-1-v1", bearer_id="b-1", synthesize=espeak_voice)
    key = WatermarkKey(secret=bytes(range(32)))
    done = generate_text(cat, store, row, voice=voice, key=key, sign=site_signer(Path(identity.folder)))
    assert done.state == "ready", done.reason
    return request_id, done.clip_id


def test_health(api) -> None:
    client = api[0]
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_a_request_is_followed_to_its_clip_which_streams_with_range_and_etag(api) -> None:
    client, _, _, token, _, _ = api
    request_id, clip_id = ready_clip(api)
    status = client.get(f"/v1/requests/{request_id}", headers=auth(token)).json()
    (text,) = status["texts"]
    assert text["state"] == "ready" and text["clip_url"] == f"/v1/clips/{clip_id}"
    assert text["credit_line"] == "Voix de b-1, Kilbride" and text["disclosure_text"].startswith("A synthetic voice")
    whole = client.get(f"/v1/clips/{clip_id}", headers=auth(token))
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/mpeg"
    assert whole.content[:3] in (b"ID3", b"\xff\xfb") or whole.content[0] == 0xFF
    etag = whole.headers["etag"]
    assert whole.headers["x-heirloom-credit"] == "Voix de b-1, Kilbride"
    assert whole.headers["x-heirloom-disclosure"].startswith("A synthetic voice")
    part = client.get(f"/v1/clips/{clip_id}", headers={**auth(token), "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
    tail = client.get(f"/v1/clips/{clip_id}", headers={**auth(token), "Range": "bytes=-50"})
    assert tail.content == whole.content[-50:]
    bad = client.get(f"/v1/clips/{clip_id}", headers={**auth(token), "Range": f"bytes={len(whole.content) + 10}-"})
    assert bad.status_code == 416
    assert client.get(f"/v1/clips/{clip_id}", headers={**auth(token), "If-None-Match": etag}).status_code == 304
    manifest = client.get(f"/v1/clips/{clip_id}/manifest", headers=auth(token)).json()
    assert manifest["credentials"]["state"] == "Trusted"
    assert manifest["credentials"]["clip"]["clip_id"] == clip_id
    clips = client.get("/v1/exhibits/kiosk-1/clips", headers=auth(token)).json()["clips"]
    assert [c["clip_id"] for c in clips] == [clip_id]


def test_tokens_and_another_exhibits_objects(api) -> None:
    client, _, _, token, other, _ = api
    request_id, clip_id = ready_clip(api)
    for path in (f"/v1/requests/{request_id}", f"/v1/clips/{clip_id}", "/v1/exhibits/kiosk-1/clips"):
        missing = client.get(path)
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
        assert missing.headers["www-authenticate"] == "Bearer"
        assert client.get(path, headers=auth(token + "x")).status_code == 401
        hidden = client.get(path, headers=auth(other))
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
    body = {"bearer_id": "b-1", "texts": ["x"], "format": "wav"}
    assert client.post("/v1/exhibits/kiosk-1/requests", json=body, headers=auth(other)).status_code == 404


def test_refusals_carry_a_stable_code_and_the_reasons(api) -> None:
    client, cat, _, token, _, _ = api
    post = lambda body: client.post("/v1/exhibits/kiosk-1/requests", json=body, headers=auth(token))  # noqa: E731
    refused = post({"bearer_id": "b-2", "texts": ["a line"], "format": "wav"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "refused"
    assert any("silence means no" in r for r in refused.json()["error"]["reasons"])
    assert post({"bearer_id": "b-1", "texts": ["a line"], "format": "wav"}).status_code == 202
    duplicate = post({"bearer_id": "b-1", "texts": ["a  line"], "format": "wav"})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "duplicate_text"
    big = post({"bearer_id": "b-1", "texts": [f"line {i}" for i in range(21)], "format": "wav"})
    assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
    assert post({"bearer_id": "b-1", "texts": ["x" * 601], "format": "wav"}).status_code == 413
    assert post({"bearer_id": "b-1", "texts": ["   "], "format": "wav"}).status_code == 422
    wrong = post({"bearer_id": "b-1", "texts": ["a"], "format": "aiff"})
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "invalid_input"
    garbled = client.post(
        "/v1/exhibits/kiosk-1/requests",
        content=b"{not json",
        headers={**auth(token), "Content-Type": "application/json"},
    )
    assert garbled.status_code == 400 and garbled.json()["error"]["code"] == "malformed_body"


def test_a_withdrawn_clip_is_gone(api) -> None:
    client, cat, _, token, _, _ = api
    request_id, clip_id = ready_clip(api)
    cat.update("clips", f"clip_id = '{clip_id}'", {"status": "'withdrawn'"})
    gone = client.get(f"/v1/clips/{clip_id}", headers=auth(token))
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "withdrawn"
    status = client.get(f"/v1/requests/{request_id}", headers=auth(token)).json()
    assert status["texts"][0]["state"] == "withdrawn" and status["texts"][0]["clip_url"] is None


def test_a_clip_purged_by_revocation_answers_410(api) -> None:
    client, cat, store, token, other, _ = api
    request_id, clip_id = ready_clip(api)
    add_model(cat, store, "b-1", "c-x", [], version=1)
    carry_out(cat, store, "b-1", ["exhibit_generation"], "withdrawn by the bearer")
    assert not cat.read("clips").to_pylist()
    assert client.get(f"/v1/clips/{clip_id}", headers=auth(token)).status_code == 410
    assert client.get(f"/v1/clips/{clip_id}", headers=auth(other)).status_code == 404
    status = client.get(f"/v1/requests/{request_id}", headers=auth(token)).json()
    assert status["texts"][0]["state"] == "withdrawn" and status["texts"][0]["reason"].startswith("consent withdrawn")


def test_an_exhibit_over_its_rate_limit_gets_429(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HEIRLOOM_EXHIBIT_RATE_BURST", "3")
    monkeypatch.setenv("HEIRLOOM_EXHIBIT_RATE_PER_MINUTE", "1")
    archive = str(tmp_path / "archive")
    cat = Catalog(open_storage(archive))
    cat.init()
    _, token = add_exhibit(cat, "kiosk-1", venue="Hall", audience="public", purpose="education")
    client = TestClient(create_app(archive))
    codes = [client.get("/v1/exhibits/kiosk-1/clips", headers=auth(token)).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    limited = client.get("/v1/exhibits/kiosk-1/clips", headers=auth(token))
    assert int(limited.headers["retry-after"]) >= 1 and limited.json()["error"]["code"] == "rate_limited"


def test_a_misspelt_exhibit_setting_is_an_error(monkeypatch, tmp_path) -> None:
    from heirloom.errors import SettingsError

    monkeypatch.setenv("HEIRLOOM_EXHIBIT_MAX_TEXT", "5")
    with pytest.raises(SettingsError, match="HEIRLOOM_EXHIBIT_MAX_TEXT"):
        create_app(str(tmp_path / "a"))


def _run_schema(
    app, headers: dict[str, str], *, examples: int, expect: set[int] | None = None, real: dict[str, str] | None = None
) -> int:
    """Hypothesis-generated calls of every operation in the app's OpenAPI document (schemathesis's own pytest
    plugin cannot name tests under pytest 9); returns how many calls were made. ``real`` path parameters
    (the token's own exhibit, a real request and clip) replace the generated ones in half the calls, so the
    generated bodies reach the code behind the ownership checks."""
    import random

    from hypothesis import HealthCheck, given, settings

    # valid data the API may still refuse by design: over a documented limit (413), or what consent forbids (403)
    accepted = ["2xx", "3xx", "401", "403", "404", "409", "413", "429"]
    config = schemathesis.config.SchemathesisConfig.from_dict(
        {"checks": {"positive_data_acceptance": {"expected-statuses": accepted}}}
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case) -> None:
            nonlocal calls
            calls += 1
            if real and case.path_parameters and random.Random(calls).random() < 0.5:
                case.path_parameters = {k: real.get(k, v) for k, v in case.path_parameters.items()}
            if expect is None:
                case.call_and_validate(headers=headers)
            else:
                response = case.call(headers=headers)
                if case.operation.path.startswith("/v1/"):
                    assert response.status_code in expect, (case.operation.path, response.status_code, response.text)

        call()
    return calls


@pytest.mark.slow
def test_the_api_keeps_to_its_openapi_document(api) -> None:
    client, _, _, token, _, _ = api
    request_id, clip_id = ready_clip(api)
    real = {"exhibit_id": "kiosk-1", "request_id": request_id, "clip_id": clip_id}
    assert _run_schema(client.app, auth(token), examples=40, real=real) > 150


@pytest.mark.slow
def test_a_wrong_token_or_another_exhibits_token_gets_only_401_or_404(api) -> None:
    client, _, _, token, other, _ = api
    request_id, clip_id = ready_clip(api)
    real = {"exhibit_id": "kiosk-1", "request_id": request_id, "clip_id": clip_id}  # kiosk-1's, not kiosk-2's
    _run_schema(client.app, auth(token + "-wrong"), examples=15, expect={401, 422}, real=real)
    _run_schema(client.app, auth(other), examples=15, expect={200, 404, 422}, real=real)
