"""Every answer that is not a success: one JSON shape with a stable code, a message a person can act on,
and, for a refusal, the policy's reasons; the status each heirloom error means."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from heirloom.errors import (
    ClipWithdrawnError,
    DuplicateTextError,
    ExhibitError,
    ExhibitNotFoundError,
    ExhibitRefusedError,
    HeirloomError,
    InvalidRequestError,
    RequestStateError,
    RequestTooLargeError,
    TokenError,
)

STATUS: dict[type[ExhibitError], int] = {
    TokenError: 401,
    ExhibitRefusedError: 403,
    ExhibitNotFoundError: 404,
    DuplicateTextError: 409,
    RequestStateError: 409,
    ClipWithdrawnError: 410,
    RequestTooLargeError: 413,
    InvalidRequestError: 422,
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    reasons: list[str] = []


class ErrorBody(BaseModel):
    error: ErrorDetail


class RateLimited(ExhibitError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message)


def error_response(status: int, code: str, message: str, reasons: tuple[str, ...] | list[str] = (), **headers: str):
    body = ErrorBody(error=ErrorDetail(code=code, message=message, reasons=list(reasons)))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers or None)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route may give, for its OpenAPI document."""
    words = {
        400: "Unparsable body",
        401: "Missing or wrong token",
        403: "Refused by consent or the exhibit",
        404: "No such object for this exhibit",
        409: "Already requested",
        410: "Withdrawn",
        413: "Too many or too long texts",
        422: "Malformed input",
        429: "Over the exhibit's rate limit",
    }
    return {s: {"model": ErrorBody, "description": words[s]} for s in statuses}


async def heirloom_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, RateLimited):
        return error_response(429, exc.code, str(exc), **{"Retry-After": str(max(1, round(exc.retry_after_s)))})
    if isinstance(exc, ExhibitError):
        status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        return error_response(status, exc.code, str(exc), exc.reasons, **headers)
    assert isinstance(exc, HeirloomError)
    return error_response(503, "unavailable", f"the archive could not answer: {exc}")


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    reasons = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors]
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "malformed_body", "the body is not valid JSON; send a JSON object", reasons)
    return error_response(
        422, "invalid_input", "the request does not match the API's schema (see /openapi.json)", reasons
    )


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))
