"""Archive storage, local and on a real S3 server (SeaweedFS)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.storage import LocalStorage, open_storage, safe_key
from heirloom.errors import ObjectExistsError, ObjectNotFoundError, SettingsError, StorageError
from heirloom.settings import StorageSettings, storage_settings


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "local":
        return open_storage(str(tmp_path / "archive"))
    return open_storage(request.getfixturevalue("s3_env") + "/root")


def test_put_read_list_delete(store) -> None:
    info = store.put("a/b/one.bin", b"hello")
    assert info.size == 5 and info.sha256 == hashlib.sha256(b"hello").hexdigest()
    store.put("a/two.bin", io.BytesIO(b"x" * 10))
    assert store.read_bytes("a/b/one.bin") == b"hello"
    assert store.exists("a/two.bin") and not store.exists("a/three.bin")
    assert {(o.key, o.size) for o in store.list("a")} == {("a/b/one.bin", 5), ("a/two.bin", 10)}
    assert store.stat("a/two.bin").size == 10
    store.put("a/two.bin", b"replaced")
    assert store.read_bytes("a/two.bin") == b"replaced"
    store.delete("a/two.bin")
    assert not store.exists("a/two.bin")
    with pytest.raises(ObjectNotFoundError):
        store.read_bytes("a/two.bin")


def test_create_never_overwrites(store) -> None:
    store.create("originals/ab/x.wav", b"original bytes")
    with pytest.raises(ObjectExistsError, match="never overwritten"):
        store.create("originals/ab/x.wav", b"something else")
    assert store.read_bytes("originals/ab/x.wav") == b"original bytes"


@pytest.mark.s3
def test_s3_multipart_streams_and_hashes(s3_env: str) -> None:
    settings = StorageSettings(chunk_mb=5, multipart_threshold_mb=5, max_concurrency=2)
    store = open_storage(s3_env, settings=settings)
    payload = os.urandom(13 * 1024 * 1024 + 17)  # three parts, the last one short
    info = store.create("big/file.bin", io.BytesIO(payload))
    assert info.size == len(payload)
    assert info.sha256 == hashlib.sha256(payload).hexdigest()
    assert store.read_bytes("big/file.bin") == payload
    with pytest.raises(ObjectExistsError):
        store.create("big/file.bin", io.BytesIO(payload))
    uploads = store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])  # type: ignore[attr-defined]
    assert uploads == [], "a refused multipart create must abort its upload"


def test_local_create_leaves_no_temp_files(tmp_path: Path) -> None:
    store = open_storage(str(tmp_path))
    assert isinstance(store, LocalStorage)
    store.create("k", b"1")
    with pytest.raises(ObjectExistsError):
        store.create("k", b"2")
    assert list((tmp_path / ".tmp").iterdir()) == []
    assert [o.key for o in store.list()] == ["k"]


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a/../../b", "", "a\\b", ".", "a/\x00"])
def test_keys_outside_the_root_are_refused(key: str, tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        open_storage(str(tmp_path)).put(key, b"x")


@given(st.text(alphabet=st.sampled_from(list("ab./\\\x00_-")), max_size=24))
def test_safe_key_never_escapes(key: str) -> None:
    try:
        norm = safe_key(key)
    except StorageError:
        return
    assert not norm.startswith("/")
    assert ".." not in norm.split("/")
    assert norm not in ("", ".")


def test_unknown_scheme_and_bucketless_uri() -> None:
    with pytest.raises(StorageError, match="unsupported scheme"):
        open_storage("gs://bucket/x")
    with pytest.raises(StorageError, match="no bucket"):
        open_storage("s3://")


def test_storage_setting_typo_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEIRLOOM_STORAGE_CHUNKMB", "4")
    with pytest.raises(SettingsError, match="HEIRLOOM_STORAGE_CHUNKMB"):
        storage_settings()


def test_storage_setting_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEIRLOOM_STORAGE_CHUNK_MB", "0")
    with pytest.raises(SettingsError, match="HEIRLOOM_STORAGE"):
        storage_settings()
