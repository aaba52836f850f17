"""The exhibit commands as curators' scripts call them, the generate flow, and ``heirloom serve`` as a real
server on 127.0.0.1, stopped by PID."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_cli_e2e import HEIRLOOM, cli

pytestmark = pytest.mark.slow


def _site(tmp_path: Path) -> Path:
    archive = tmp_path / "archive"
    cli("init", archive=archive)
    cli("bearers", "add", "b-1", "--dialect", "en-gb-scotland", archive=archive)
    grant = ["consent", "grant", "b-1", "--grantor-type", "self", "--grantor-id", "b-1", "--audience", "public"]
    for scope in ("voice_synthesis", "exhibit_generation", "model_training"):
        grant += ["--scope", scope]
    cli(*grant, archive=archive)
    return archive


def test_exhibit_commands_and_a_generate_run_that_says_why_it_failed(tmp_path: Path, monkeypatch) -> None:
    archive = _site(tmp_path)
    added = json.loads(
        cli(
            "exhibit", "add", "kiosk-1", "--venue", "Hall 3", "--audience", "public", "--purpose", "education",
            "--bearer", "b-1", "--json", archive=archive,
        ).stdout
    )  # fmt: skip
    assert added["token"].startswith("hlx_") and "token_sha256" not in added
    assert [x["exhibit_id"] for x in json.loads(cli("exhibit", "list", "--json", archive=archive).stdout)] == [
        "kiosk-1"
    ]
    again = cli(
        "exhibit",
        "add",
        "kiosk-1",
        "--venue",
        "x",
        "--audience",
        "public",
        "--purpose",
        "e",
        archive=archive,
        check=False,
    )
    assert again.returncode == 1 and "already registered" in again.stderr

    from catalog.tables import Catalog
    from tasks.exhibits import get_exhibit, submit

    cat = Catalog.open(str(archive))
    (row,) = submit(cat, get_exhibit(cat, "kiosk-1"), "b-1", ["The water is wide, I cannot get over."], "wav")
    pending = json.loads(cli("exhibit", "requests", "--pending", "--json", archive=archive).stdout)
    assert [(r["request_id"], r["state"]) for r in pending] == [(row.request_id, "awaiting_approval")]
    approved = json.loads(cli("exhibit", "approve", row.request_id, "--by", "cur-1", "--json", archive=archive).stdout)
    assert approved[0]["state"] == "queued" and approved[0]["approvals"][0]["by"] == "cur-1"

    cli("watermark", "keygen", str(tmp_path / "site.key"), archive=archive)
    cli("provenance", "keygen", str(tmp_path / "identity"), archive=archive)
    monkeypatch.setenv("HEIRLOOM_WATERMARK_KEY_FILE", str(tmp_path / "site.key"))
    monkeypatch.setenv("HEIRLOOM_PROVENANCE_DIR", str(tmp_path / "identity"))
    run = cli("generate", "--json", archive=archive, check=False)
    assert run.returncode == 1 and json.loads(run.stdout)["states"] == {"failed": 1}
    (failed,) = json.loads(cli("exhibit", "requests", "--json", archive=archive).stdout)
    assert failed["state"] == "failed" and "no active voice model" in failed["reason"]
    retried = json.loads(cli("exhibit", "retry", row.request_id, "--by", "cur-1", "--json", archive=archive).stdout)
    assert retried[0]["state"] == "queued"

    rotated = json.loads(cli("exhibit", "rotate-token", "kiosk-1", "--json", archive=archive).stdout)
    assert rotated["token"] != added["token"]
    cli("exhibit", "retire", "kiosk-1", archive=archive)
    assert json.loads(cli("exhibit", "show", "kiosk-1", "--json", archive=archive).stdout)["status"] == "retired"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_on_loopback_and_stops_by_pid(tmp_path: Path) -> None:
    archive = _site(tmp_path)
    token = json.loads(
        cli(
            "exhibit",
            "add",
            "k",
            "--venue",
            "v",
            "--audience",
            "public",
            "--purpose",
            "education",
            "--json",
            archive=archive,
        ).stdout
    )["token"]
    port = _free_port()
    env = {**os.environ, "HEIRLOOM_ARCHIVE": str(archive), "HEIRLOOM_EXHIBIT_GENERATE_IN_PROCESS": "false"}
    server = subprocess.Popen(
        [HEIRLOOM, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                    assert json.loads(r.read()) == {"status": "ok"}
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "heirloom serve did not answer within 60 s"
                time.sleep(0.5)
        request = urllib.request.Request(f"{base}/v1/exhibits/k/clips", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=5) as r:
            assert json.loads(r.read()) == {"exhibit_id": "k", "clips": []}
        with urllib.request.urlopen(f"{base}/openapi.json", timeout=5) as r:
            assert "/v1/exhibits/{exhibit_id}/requests" in json.loads(r.read())["paths"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_the_servers_generation_runner_takes_up_queued_texts(tmp_path: Path) -> None:
    from catalog.tables import Catalog
    from flows.api.generation import GenerationLoop
    from tasks.exhibits import add_exhibit, approve, rows_of, submit

    archive = _site(tmp_path)
    cat = Catalog.open(str(archive))
    exhibit, _ = add_exhibit(cat, "k", venue="v", audience="public", purpose="education")
    (row,) = submit(cat, exhibit, "b-1", ["The water is wide, I cannot get over."], "wav")
    approve(cat, row.request_id, by="cur-1")
    loop = GenerationLoop(str(archive), poll_s=0.5)
    loop.start()
    try:
        deadline = time.monotonic() + 240
        while (state := rows_of(cat, request_id=row.request_id)[0].state) == "queued":
            assert time.monotonic() < deadline, "the runner never took the text up"
            time.sleep(1)
    finally:
        loop.stop()
    (after,) = rows_of(cat, request_id=row.request_id)
    assert state == "failed" and "cannot sign or mark clips" in after.reason  # no key or identity on this site
