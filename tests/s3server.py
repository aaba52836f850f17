"""A real S3 server for tests and benchmarks: SeaweedFS ``weed mini`` bound to 127.0.0.1.

Telemetry is off, data and logs live in their own temp folder, and the server is stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ACCESS_KEY = "heirloom-test"
SECRET_KEY = "heirloom-test-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(endpoint: str, port: int, proc: subprocess.Popen, timeout_s: float) -> None:
    import boto3

    deadline = time.monotonic() + timeout_s
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            client.list_buckets()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS S3 did not come up on {endpoint} within {timeout_s}s") from None
            time.sleep(0.3)


@contextmanager
def seaweed_server(timeout_s: float = 90) -> Iterator[str]:
    """Start ``weed mini`` on free loopback ports; yields the S3 endpoint URL."""
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    root = Path(tempfile.mkdtemp(prefix="heirloom-weed-"))
    (root / "data").mkdir()
    (root / "logs").mkdir()
    ports = {name: _free_port() for name in ("master", "volume", "filer", "s3", "webdav", "admin")}
    cmd = [
        weed,
        f"-logdir={root / 'logs'}",
        "mini",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-admin.ui=false",
        f"-master.port={ports['master']}",
        f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}",
        f"-s3.port={ports['s3']}",
        f"-webdav.port={ports['webdav']}",
        f"-admin.port={ports['admin']}",
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    with open(root / "logs" / "stdout.txt", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            endpoint = f"http://127.0.0.1:{ports['s3']}"
            _wait_ready(endpoint, ports["s3"], proc, timeout_s)
            yield endpoint
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass
            shutil.rmtree(root, ignore_errors=True)


def s3_environment(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": "us-east-1",
    }
