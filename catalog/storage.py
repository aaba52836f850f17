"""Archive storage behind one interface: a local directory or ``s3://bucket/prefix`` through boto3.

Keys are relative POSIX paths (``originals/ab/ab12....wav``). Every write streams in blocks and hashes what
it writes, so memory stays flat in object size and the caller learns the SHA-256 of exactly the bytes stored.
:meth:`Storage.create` is a conditional create: it never replaces an object, which is how originals stay
immutable; a crash mid-write leaves no partial object at the key (a temp file plus ``link`` locally, a
multipart upload that only appears on completion on S3).

>>> import tempfile, io
>>> store = open_storage(tempfile.mkdtemp())
>>> store.create("a/b.txt", io.BytesIO(b"hi")).size
2
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import shutil
import tempfile
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from heirloom.errors import ObjectExistsError, ObjectNotFoundError, StorageError
from heirloom.settings import S3Settings, StorageSettings, s3_settings, storage_settings

_MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None = None


def safe_key(key: str) -> str:
    """Normalise ``key`` to a relative POSIX path, refusing anything that would escape the root.

    >>> safe_key("incoming//c1/./a.wav")
    'incoming/c1/a.wav'
    """
    if not key or "\x00" in key or "\\" in key:
        raise StorageError(repr(key), "not a usable storage key (empty, NUL or backslash)")
    norm = posixpath.normpath(key)
    if norm.startswith("/") or norm == ".." or norm.startswith("../") or norm == ".":
        raise StorageError(key, "points outside the storage root; use a path inside it")
    return norm


def join_key(*parts: str) -> str:
    return safe_key("/".join(p.strip("/") for p in parts if p.strip("/")))


class Storage(Protocol):
    root_uri: str

    def uri(self, key: str) -> str: ...
    def key_of(self, uri: str) -> str: ...
    def open_read(self, key: str) -> BinaryIO: ...
    def read_bytes(self, key: str) -> bytes: ...
    def put(self, key: str, src: BinaryIO | bytes) -> ObjectInfo: ...
    def create(self, key: str, src: BinaryIO | bytes) -> ObjectInfo: ...
    def exists(self, key: str) -> bool: ...
    def stat(self, key: str) -> ObjectInfo: ...
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...
    def delete(self, key: str) -> None: ...
    def local_path(self, key: str) -> Path | None: ...
    def table_uri(self, key: str) -> str: ...
    def delta_storage_options(self) -> dict[str, str]: ...


def open_storage(uri: str, *, settings: StorageSettings | None = None) -> Storage:
    """Storage rooted at ``uri``: ``s3://bucket/prefix``, ``file:///path`` or a plain path."""
    settings = settings or storage_settings()
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise StorageError(uri, "S3 URI has no bucket; write s3://bucket/prefix")
        return S3Storage(bucket, prefix.strip("/"), settings=settings, s3=s3_settings())
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if "://" in uri:
        raise StorageError(uri, "unsupported scheme; use a directory path or s3://bucket/prefix")
    return LocalStorage(Path(uri), settings=settings)


def _as_stream(src: BinaryIO | bytes) -> BinaryIO:
    return io.BytesIO(src) if isinstance(src, bytes | bytearray) else src


def sha256_stream(stream: BinaryIO, chunk_size: int = 8 * _MiB) -> tuple[str, int]:
    """SHA-256 hex digest and byte count of a stream, read in blocks."""
    digest = hashlib.sha256()
    size = 0
    while block := stream.read(chunk_size):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a local file."""
    with open(path, "rb") as f:
        return sha256_stream(f)[0]


@contextmanager
def staged(source: Storage, key: str) -> Iterator[Path]:
    """A local path to read the file from: itself on local disk, else a streamed temporary copy."""
    local = source.local_path(key)
    if local is not None:
        yield local
        return
    tmp = Path(tempfile.mkdtemp(prefix="heirloom-stage-"))
    try:
        path = tmp / Path(key).name
        with source.open_read(key) as src, open(path, "wb") as out:
            shutil.copyfileobj(src, out, length=8 * 1024 * 1024)
        yield path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class LocalStorage:
    """A directory on local disk (the embedded default archive)."""

    _TMP = ".tmp"

    def __init__(self, root: Path, *, settings: StorageSettings) -> None:
        self.root = root.expanduser().absolute()
        self.root_uri = str(self.root)
        self._chunk = settings.chunk_mb * _MiB

    def _path(self, key: str) -> Path:
        return self.root / safe_key(key)

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def key_of(self, uri: str) -> str:
        """The key of a URI this storage gave out; refuses one outside the root."""
        return _key_under(self.root_uri, uri.removeprefix("file://"))

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def table_uri(self, key: str) -> str:
        return str(self._path(key))

    def delta_storage_options(self) -> dict[str, str]:
        return {}

    def open_read(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError as e:
            raise ObjectNotFoundError(self.uri(key)) from e
        except OSError as e:
            raise StorageError(self.uri(key), f"cannot read: {e.strerror}") from e

    def read_bytes(self, key: str) -> bytes:
        with self.open_read(key) as f:
            return f.read()

    def _write_temp(self, key: str, src: BinaryIO | bytes) -> tuple[Path, ObjectInfo]:
        tmp_dir = self.root / self._TMP
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        size = 0
        stream = _as_stream(src)
        try:
            with open(tmp, "wb") as out:
                while block := stream.read(self._chunk):
                    digest.update(block)
                    out.write(block)
                    size += len(block)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, ObjectInfo(key=safe_key(key), size=size, sha256=digest.hexdigest())

    def put(self, key: str, src: BinaryIO | bytes) -> ObjectInfo:
        final = self._path(key)
        tmp, info = self._write_temp(key, src)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        return info

    def create(self, key: str, src: BinaryIO | bytes) -> ObjectInfo:
        final = self._path(key)
        tmp, info = self._write_temp(key, src)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            # link() fails if the target exists, so two writers can never both win and nothing is replaced.
            os.link(tmp, final)
        except FileExistsError as e:
            raise ObjectExistsError(self.uri(key)) from e
        finally:
            tmp.unlink(missing_ok=True)
        return info

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def stat(self, key: str) -> ObjectInfo:
        try:
            return ObjectInfo(key=safe_key(key), size=self._path(key).stat().st_size)
        except FileNotFoundError as e:
            raise ObjectNotFoundError(self.uri(key)) from e

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d != self._TMP)
            for name in sorted(filenames):
                path = Path(dirpath) / name
                yield ObjectInfo(key=path.relative_to(self.root).as_posix(), size=path.stat().st_size)

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    def clean_temp(self) -> int:
        """Remove temp files a killed writer left behind; returns how many."""
        tmp_dir = self.root / self._TMP
        removed = 0
        if tmp_dir.is_dir():
            for p in tmp_dir.iterdir():
                p.unlink(missing_ok=True)
                removed += 1
        return removed


class S3Storage:
    """``s3://bucket/prefix`` through boto3, path-style, endpoint and credentials from AWS_* variables."""

    def __init__(self, bucket: str, prefix: str, *, settings: StorageSettings, s3: S3Settings) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        self.root_uri = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._s3cfg = s3
        self._chunk = settings.chunk_mb * _MiB
        self._threshold = settings.multipart_threshold_mb * _MiB
        self._concurrency = settings.max_concurrency
        self.client = boto3.client(
            "s3",
            endpoint_url=s3.endpoint_url,
            aws_access_key_id=s3.access_key_id,
            aws_secret_access_key=s3.secret_access_key,
            aws_session_token=s3.session_token,
            region_name=s3.region_name,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}),
        )

    def _key(self, key: str) -> str:
        return join_key(self.prefix, key) if self.prefix else safe_key(key)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def key_of(self, uri: str) -> str:
        """The key of a URI this storage gave out; refuses one outside the root."""
        return _key_under(self.root_uri, uri)

    def local_path(self, key: str) -> Path | None:
        return None

    def table_uri(self, key: str) -> str:
        return self.uri(key)

    def delta_storage_options(self) -> dict[str, str]:
        opts = {"AWS_REGION": self._s3cfg.region_name, "conditional_put": "etag"}
        if self._s3cfg.endpoint_url:
            opts["AWS_ENDPOINT_URL"] = self._s3cfg.endpoint_url
            if self._s3cfg.endpoint_url.startswith("http://"):
                opts["AWS_ALLOW_HTTP"] = "true"
        if self._s3cfg.access_key_id:
            opts["AWS_ACCESS_KEY_ID"] = self._s3cfg.access_key_id
            opts["AWS_SECRET_ACCESS_KEY"] = self._s3cfg.secret_access_key or ""
        if self._s3cfg.session_token:
            opts["AWS_SESSION_TOKEN"] = self._s3cfg.session_token
        return opts

    def _error(self, key: str, e: Exception) -> StorageError:
        from botocore.exceptions import ClientError

        if isinstance(e, ClientError):
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                return ObjectNotFoundError(self.uri(key))
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return ObjectExistsError(self.uri(key))
            if code == "NoSuchBucket":
                return StorageError(self.uri(key), f"bucket {self.bucket!r} does not exist; create it first")
            return StorageError(self.uri(key), f"S3 error {code}: {e.response.get('Error', {}).get('Message')}")
        return StorageError(self.uri(key), f"S3 request failed: {e}")

    def open_read(self, key: str) -> BinaryIO:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except Exception as e:
            raise self._error(key, e) from e
        return body  # botocore's StreamingBody reads in blocks and closes like a file

    def read_bytes(self, key: str) -> bytes:
        with self.open_read(key) as f:
            return f.read()

    def put(self, key: str, src: BinaryIO | bytes) -> ObjectInfo:
        return self._upload(key, _as_stream(src), if_none_match=False)

    def create(self, key: str, src: BinaryIO | bytes) -> ObjectInfo:
        return self._upload(key, _as_stream(src), if_none_match=True)

    def _upload(self, key: str, stream: BinaryIO, *, if_none_match: bool) -> ObjectInfo:
        # Written by hand rather than with upload_fileobj: the hash must cover the very bytes sent, and the
        # conditional header must go on CompleteMultipartUpload, neither of which s3transfer offers.
        s3key = self._key(key)
        cond = {"IfNoneMatch": "*"} if if_none_match else {}
        first = _read_full(stream, self._threshold + 1)
        if len(first) <= self._threshold:
            try:
                self.client.put_object(Bucket=self.bucket, Key=s3key, Body=first, **cond)
            except Exception as e:
                raise self._error(key, e) from e
            return ObjectInfo(key=safe_key(key), size=len(first), sha256=hashlib.sha256(first).hexdigest())
        try:
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=s3key)["UploadId"]
        except Exception as e:
            raise self._error(key, e) from e
        digest = hashlib.sha256()
        try:
            size, parts = self._upload_parts(s3key, upload_id, _Prefixed(first, stream), digest)
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=s3key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **cond
            )
        except BaseException as e:
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=s3key, UploadId=upload_id)
            except Exception:  # noqa: BLE001 - the original error is the one to report
                pass
            if isinstance(e, Exception) and not isinstance(e, StorageError):
                raise self._error(key, e) from e
            raise
        return ObjectInfo(key=safe_key(key), size=size, sha256=digest.hexdigest())

    def _upload_parts(
        self, s3key: str, upload_id: str, stream: BinaryIO, digest: hashlib._Hash
    ) -> tuple[int, list[dict[str, object]]]:
        """Send parts with at most ``max_concurrency`` in flight: memory is bounded by parts, not size."""

        def send(number: int, data: bytes) -> dict[str, object]:
            r = self.client.upload_part(Bucket=self.bucket, Key=s3key, UploadId=upload_id, PartNumber=number, Body=data)
            return {"PartNumber": number, "ETag": r["ETag"]}

        parts: list[dict[str, object]] = []
        pending: deque[Future] = deque()
        size = 0
        with ThreadPoolExecutor(max_workers=self._concurrency) as pool:
            number = 0
            while data := _read_full(stream, self._chunk):
                digest.update(data)
                size += len(data)
                number += 1
                pending.append(pool.submit(send, number, data))
                while len(pending) >= self._concurrency:
                    parts.append(pending.popleft().result())
            parts.extend(f.result() for f in pending)
        return size, parts

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFoundError:
            return False
        return True

    def stat(self, key: str) -> ObjectInfo:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as e:
            raise self._error(key, e) from e
        return ObjectInfo(key=safe_key(key), size=int(head["ContentLength"]))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        full = self._key(prefix) + "/" if prefix else (self.prefix + "/" if self.prefix else "")
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                for obj in page.get("Contents", []):
                    yield ObjectInfo(key=obj["Key"][strip:], size=int(obj["Size"]))
        except Exception as e:
            raise self._error(prefix or ".", e) from e

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as e:
            raise self._error(key, e) from e

    def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (``heirloom init`` on a fresh S3 archive)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception:
            try:
                self.client.create_bucket(Bucket=self.bucket)
            except Exception as e:
                raise self._error(".", e) from e


def _key_under(root: str, uri: str) -> str:
    prefix = root.rstrip("/") + "/"
    if not uri.startswith(prefix):
        raise StorageError(uri, f"is not inside the archive {root}")
    return safe_key(uri[len(prefix) :])


def _read_full(stream: BinaryIO, n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short reads (sockets and pipes return less than asked)."""
    chunks = []
    remaining = n
    while remaining > 0:
        block = stream.read(remaining)
        if not block:
            break
        chunks.append(block)
        remaining -= len(block)
    return b"".join(chunks)


class _Prefixed:
    """A stream that yields ``head`` and then the rest of ``tail`` (the bytes read to pick put vs multipart)."""

    def __init__(self, head: bytes, tail: BinaryIO) -> None:
        self._head = memoryview(head)
        self._tail = tail

    def read(self, n: int = -1) -> bytes:
        if len(self._head):
            out = bytes(self._head[:n] if n >= 0 else self._head)
            self._head = self._head[len(out) :]
            return out
        return self._tail.read(n)
