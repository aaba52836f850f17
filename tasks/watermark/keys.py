"""The site's secret watermark key, and everything derived from it.

Every pattern (which cells carry sync and which carry each coded bit, their signs, the scrambling of the
coded bits and the CRC's initial value) is drawn from HMAC-SHA256 of the key, so without the key nothing
decodes and one site's marks cannot be read, or forged, by another.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heirloom.errors import WatermarkError

KEY_ENV = "HEIRLOOM_WATERMARK_KEY_FILE"
MIN_KEY_BYTES = 16


@dataclass(frozen=True, slots=True)
class WatermarkKey:
    secret: bytes

    def rng(self, purpose: str) -> np.random.Generator:
        digest = hmac.new(self.secret, purpose.encode(), hashlib.sha256).digest()
        return np.random.default_rng(int.from_bytes(digest, "big"))

    def crc_init(self) -> int:
        return int(self.rng("crc").integers(0, 1 << 24))

    @property
    def fingerprint(self) -> str:
        """A public name for the key (never the key): the first 8 hex digits of its HMAC on a fixed label."""
        return hmac.new(self.secret, b"heirloom-watermark-fingerprint", hashlib.sha256).hexdigest()[:8]


def new_key_file(path: Path) -> WatermarkKey:
    """Write a fresh random 32-byte key (hex) readable by its owner only."""
    secret = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret.hex() + "\n")
    return WatermarkKey(secret)


def load_key(path: Path | None) -> WatermarkKey:
    """The key from ``path``, else from the file ``$HEIRLOOM_WATERMARK_KEY_FILE`` names."""
    if path is None:
        env = os.environ.get(KEY_ENV)
        if not env:
            raise WatermarkError(
                f"no watermark key: pass --key-file FILE or set {KEY_ENV}; create one with "
                "'heirloom watermark keygen FILE'"
            )
        path = Path(env)
    try:
        text = path.read_text().strip()
    except OSError as e:
        raise WatermarkError(f"cannot read the watermark key file {path}: {e.strerror}") from None
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) < MIN_KEY_BYTES:
        raise WatermarkError(
            f"{path} is not a watermark key: expected at least {MIN_KEY_BYTES} bytes as hex on one line "
            "(create one with 'heirloom watermark keygen FILE')"
        )
    return WatermarkKey(secret)
