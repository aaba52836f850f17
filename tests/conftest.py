"""Shared fixtures: an isolated Prefect home, a real SeaweedFS S3 server, the Prefect test harness."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator

import pytest

from tests.s3server import s3_environment, seaweed_server

_PREFECT_HOME = tempfile.mkdtemp(prefix="heirloom-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ.pop("HEIRLOOM_ARCHIVE", None)
for _k in [k for k in os.environ if k.startswith("HEIRLOOM_STORAGE_")]:
    os.environ.pop(_k)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 server (SeaweedFS) for the whole session, stopped by PID at the end."""
    with seaweed_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """AWS_* variables pointing at the test server; returns a fresh bucket's URI."""
    for name, value in s3_environment(s3_endpoint).items():
        monkeypatch.setenv(name, value)
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
