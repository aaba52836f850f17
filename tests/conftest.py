"""Shared fixtures: an isolated Prefect home, a real SeaweedFS S3 server, archives and collections."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_PREFECT_HOME = tempfile.mkdtemp(prefix="heirloom-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ.pop("HEIRLOOM_ARCHIVE", None)
for _k in [k for k in os.environ if k.startswith("HEIRLOOM_STORAGE_")]:
    os.environ.pop(_k)

S3_KEY = "heirloom-test"
S3_SECRET = "heirloom-test-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout_s: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited early with code {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"S3 server did not listen on {port} within {timeout_s}s")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 server: SeaweedFS ``weed mini`` on 127.0.0.1, stopped by PID at the end of the session."""
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    root = Path(tempfile.mkdtemp(prefix="heirloom-weed-"))
    (root / "data").mkdir()
    (root / "logs").mkdir()
    ports = {name: _free_port() for name in ("master", "volume", "filer", "s3", "webdav", "admin")}
    cmd = [weed, f"-logdir={root / 'logs'}", "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1",
           "-ip.bind=127.0.0.1", "-master.telemetry=false", "-admin.ui=false",
           f"-master.port={ports['master']}", f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}",
           f"-s3.port={ports['s3']}", f"-webdav.port={ports['webdav']}", f"-admin.port={ports['admin']}"]  # fmt: skip
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET}
    log = open(root / "logs" / "stdout.txt", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait_port(ports["s3"], 90, proc)
        endpoint = f"http://127.0.0.1:{ports['s3']}"
        _wait_s3_ready(endpoint)
        yield endpoint
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _wait_s3_ready(endpoint: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET,
                          region_name="us-east-1")  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            client.list_buckets()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """AWS_* variables pointing at the test server; returns a fresh bucket's URI."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    from catalog.storage import open_storage

    store = open_storage(f"s3://{bucket}")
    store.ensure_bucket()  # type: ignore[attr-defined]
    return f"s3://{bucket}"


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
