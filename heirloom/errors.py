"""One exception hierarchy for heirloom, rooted at :class:`HeirloomError`.

Each message names the thing that went wrong and what a person can do about it.
"""

from __future__ import annotations


class HeirloomError(Exception):
    """Root of every error heirloom raises on purpose."""


class SettingsError(HeirloomError):
    """A setting (environment variable or flag) has a value heirloom cannot use."""


class StorageError(HeirloomError):
    """Archive storage could not be read or written."""

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        self.reason = reason
        super().__init__(f"{uri}: {reason}")


class ObjectNotFoundError(StorageError):
    def __init__(self, uri: str) -> None:
        super().__init__(uri, "no such object; check the path or S3 prefix")


class ObjectExistsError(StorageError):
    """A conditional create found the object already there (originals are never overwritten)."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri, "already exists and is never overwritten")


class FixityError(HeirloomError):
    def __init__(self, uri: str, expected: str, actual: str) -> None:
        self.uri = uri
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{uri}: SHA-256 is {actual}, expected {expected}; the copy is damaged, restore it from a replica"
        )


class AudioReadError(HeirloomError):
    """A file is not usable audio: not audio at all, truncated, undecodable, or with absurd parameters."""

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        self.reason = reason
        super().__init__(f"{uri}: {reason}")


class ManifestError(HeirloomError):
    """A collection manifest, or one of its rows, is wrong."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


class CatalogError(HeirloomError):
    """The catalog could not be read or written, or a record does not fit its table."""


class TableNotFoundError(CatalogError):
    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = available
        super().__init__(
            f"no catalog table {name!r}; tables are: {', '.join(available)}. Run `heirloom init` if none exist"
        )


class QueryError(CatalogError):
    """A curator's SQL query failed."""


class ConsentError(HeirloomError):
    """Consent does not cover a use, or a consent record or request is wrong."""

    def __init__(self, bearer_id: str, reason: str) -> None:
        self.bearer_id = bearer_id
        self.reason = reason
        super().__init__(f"bearer {bearer_id}: {reason}")


class ProtocolError(HeirloomError):
    """A community protocol file is invalid."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}; fix the file (see policies/protocols/local_contexts.yaml)")


class WatermarkError(HeirloomError):
    """A watermark cannot be embedded or looked for: a missing key, a bad payload, audio unfit for it."""


class VoiceModelError(HeirloomError):
    """A voice model cannot be trained, loaded or used: no base model, too little data, unknown phones."""


class ExhibitError(HeirloomError):
    """An exhibit, its token or one of its requests cannot do what was asked.

    ``code`` is stable (exhibits' software matches on it); the message says what to do.
    """

    code = "exhibit_error"

    def __init__(self, message: str, *, reasons: tuple[str, ...] = ()) -> None:
        self.reasons = reasons
        super().__init__(message)


class ExhibitNotFoundError(ExhibitError):
    """No such exhibit, request or clip, or one that belongs to another exhibit (never said apart)."""

    code = "not_found"


class TokenError(ExhibitError):
    """A missing, wrong, rotated, retired or expired exhibit token."""

    code = "unauthorized"


class ExhibitRefusedError(ExhibitError):
    """Consent, the exhibit's bearers or its audience, purpose or validity do not allow the request."""

    code = "refused"


class DuplicateTextError(ExhibitError):
    """The same text was already requested for the bearer in this format by this exhibit."""

    code = "duplicate_text"


class InvalidRequestError(ExhibitError):
    """A request that is well-formed JSON but asks for something meaningless (an empty text, say)."""

    code = "invalid_input"


class RequestTooLargeError(ExhibitError):
    """Too many texts in one request, or a text too long."""

    code = "too_large"


class RequestStateError(ExhibitError):
    """A text is not in a state that allows the action (approving a rejected text, for example)."""

    code = "wrong_state"


class ClipWithdrawnError(ExhibitError):
    """The clip was withdrawn (consent revoked or a curator's decision) and is no longer served."""

    code = "withdrawn"


class GenerationError(HeirloomError):
    """A clip cannot be generated: no active model, a failed quality check, an encoder error."""


class ProvenanceError(HeirloomError):
    """Content Credentials cannot be made or read: no signing identity, a bad certificate, an unreadable file."""
