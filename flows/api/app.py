"""The exhibit API (FastAPI): exhibits ask for texts in a bearer's voice, follow them, and fetch their clips.

Every route but the health checks needs the exhibit's token (``Authorization: Bearer``). An exhibit sees
only its own requests and clips: anything else is 404, never 403, so the API does not confirm that another
exhibit's objects exist. Limits (texts per request, characters per text, requests per minute) are the
``HEIRLOOM_EXHIBIT_*`` settings.
"""

# No `from __future__ import annotations`: FastAPI resolves the routes' Annotated aliases made in create_app.
import hashlib
import shutil
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, Header
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog.manifests import CLIP_MEDIA_TYPES, Exhibit
from catalog.tables import Catalog
from catalog.validate import ID_PATTERN
from flows.api.errors import ErrorBody, heirloom_error, http_error, responses, validation_error
from flows.api.ratelimit import RateLimiter
from heirloom import __version__
from heirloom.errors import ClipWithdrawnError, ExhibitNotFoundError, HeirloomError
from heirloom.settings import archive_uri, exhibit_settings
from tasks.exhibits import RequestLimits, authenticate, rows_of, submit

ID = ID_PATTERN.pattern
Format = Literal["wav", "flac", "mp3", "m4a", "opus"]


class RequestIn(BaseModel):
    bearer_id: str = Field(pattern=ID, description="The bearer whose voice is asked for.")
    texts: list[Annotated[str, Field(pattern=r"[^\W_]")]] = Field(
        min_length=1, description="Lyrics or story lines, one clip each; each has a letter or digit."
    )
    format: Format = "mp3"


class TextState(BaseModel):
    item: int
    state: str
    text: str
    reason: str | None = None
    clip_id: str | None = None
    clip_url: str | None = None
    credit_line: str | None = None
    disclosure_text: str | None = None


class RequestOut(BaseModel):
    request_id: str
    exhibit_id: str
    bearer_id: str
    format: str
    status_url: str
    texts: list[TextState]


class ClipOut(BaseModel):
    clip_id: str
    status: str
    format: str | None
    duration_s: float | None
    url: str
    manifest_url: str
    sha256: str
    credit_line: str | None
    disclosure_text: str | None
    request_id: str | None
    created_at: str


class ClipsOut(BaseModel):
    exhibit_id: str
    clips: list[ClipOut]


def _clip_out(c: dict[str, Any]) -> ClipOut:
    return ClipOut(
        clip_id=c["clip_id"],
        status=c["status"],
        format=c["format"],
        duration_s=c["duration_s"],
        url=f"/v1/clips/{c['clip_id']}",
        manifest_url=f"/v1/clips/{c['clip_id']}/manifest",
        sha256=c["sha256"],
        credit_line=c["credit_line"],
        disclosure_text=c["disclosure_text"],
        request_id=c["request_id"],
        created_at=c["created_at"].isoformat(),
    )


def _header_text(text: str | None) -> str:
    """HTTP header values are Latin-1: anything else is percent-encoded (RFC 3986), as browsers read it."""
    return quote(text or "", safe=" ,.;:!?'()-/")


def create_app(archive: str | None = None) -> FastAPI:
    """The API over ``archive``. Generation is not its job: ``heirloom serve`` runs the generation runner
    once, in its own process, however many API workers it starts."""
    settings = exhibit_settings()
    uri = archive_uri(archive)
    catalog = Catalog.open(uri, cache_reads=True)
    catalog.init()
    limits = RequestLimits(max_texts=settings.max_texts, max_chars=settings.max_chars)
    limiter = RateLimiter(settings.rate_per_minute / 60.0, settings.rate_burst)
    cache = Path(tempfile.mkdtemp(prefix="heirloom-served-"))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        shutil.rmtree(cache, ignore_errors=True)

    app = FastAPI(
        title="heirloom exhibit API",
        version=__version__,
        description=__doc__,
        lifespan=lifespan,
        responses={422: {"model": ErrorBody, "description": "Malformed input"}},
    )
    app.add_exception_handler(HeirloomError, heirloom_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    bearer = HTTPBearer(auto_error=False, description="The exhibit's token, from `heirloom exhibit add`.")

    def exhibit_of(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Exhibit:
        exhibit = authenticate(catalog, credentials.credentials if credentials else None)
        limiter.take(exhibit.exhibit_id)
        return exhibit

    Me = Annotated[Exhibit, Depends(exhibit_of)]
    ExhibitId = Annotated[str, PathParam(pattern=ID, max_length=64)]

    def own(exhibit: Exhibit, exhibit_id: str) -> None:
        if exhibit_id != exhibit.exhibit_id:
            raise ExhibitNotFoundError(f"no exhibit {exhibit_id} for this token")

    def clip_row(exhibit: Exhibit, clip_id: str) -> dict[str, Any]:
        clip = next((c for c in catalog.rows("clips") if c["clip_id"] == clip_id), None)
        if clip is None and any(r.clip_id == clip_id for r in rows_of(catalog, exhibit_id=exhibit.exhibit_id)):
            raise ClipWithdrawnError(f"clip {clip_id} was withdrawn (consent revoked) and is gone for good")
        if clip is None or clip["exhibit_id"] != exhibit.exhibit_id:
            raise ExhibitNotFoundError(f"no clip {clip_id} for this exhibit")
        if clip["status"] != "ready":
            raise ClipWithdrawnError(f"clip {clip_id} was withdrawn and is no longer served; ask for another text")
        return clip

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"model": ErrorBody, "description": "Archive unreachable"}})
    def readyz() -> dict[str, str]:
        catalog.read("exhibits", columns=["exhibit_id"])
        return {"status": "ready", "archive": uri}

    @app.post(
        "/v1/exhibits/{exhibit_id}/requests",
        status_code=202,
        response_model=RequestOut,
        responses=responses(400, 401, 403, 404, 409, 413, 422, 429),
        tags=["requests"],
    )
    def create_request(exhibit_id: ExhibitId, body: RequestIn, me: Me, response: Response) -> RequestOut:
        """Ask for texts in a bearer's voice; each waits for a curator's approval, then is generated."""
        own(me, exhibit_id)
        rows = submit(catalog, me, body.bearer_id, body.texts, body.format, limits=limits)
        response.headers["Location"] = f"/v1/requests/{rows[0].request_id}"
        return status_of(me, rows[0].request_id)

    def status_of(me: Exhibit, request_id: str) -> RequestOut:
        rows = [r for r in rows_of(catalog, request_id=request_id) if r.exhibit_id == me.exhibit_id]
        if not rows:
            raise ExhibitNotFoundError(f"no request {request_id} for this exhibit")
        clips = {c["clip_id"]: c for c in catalog.rows("clips") if c["exhibit_id"] == me.exhibit_id}
        texts = []
        for r in rows:
            clip = clips.get(r.clip_id or "")
            state = "withdrawn" if clip is not None and clip["status"] != "ready" else r.state
            ready = state == "ready" and clip is not None
            texts.append(
                TextState(
                    item=r.item,
                    state=state,
                    text=r.text,
                    reason=r.reason,
                    clip_id=r.clip_id if ready else None,
                    clip_url=f"/v1/clips/{r.clip_id}" if ready else None,
                    credit_line=clip["credit_line"] if ready else None,
                    disclosure_text=clip["disclosure_text"] if ready else None,
                )
            )
        first = rows[0]
        return RequestOut(
            request_id=request_id,
            exhibit_id=first.exhibit_id,
            bearer_id=first.bearer_id,
            format=first.format,
            status_url=f"/v1/requests/{request_id}",
            texts=texts,
        )

    @app.get(
        "/v1/requests/{request_id}",
        response_model=RequestOut,
        responses=responses(401, 404, 422, 429),
        tags=["requests"],
    )
    def get_request(request_id: Annotated[str, PathParam(pattern=ID, max_length=64)], me: Me) -> RequestOut:
        """The state of each requested text; a ready one links its clip, credit line and disclosure."""
        return status_of(me, request_id)

    def local_copy(clip: dict[str, Any]) -> Path:
        """The clip as a local file to serve with Range support: itself on disk, else a verified cached copy."""
        key = catalog.storage.key_of(clip["uri"])
        local = catalog.storage.local_path(key)
        if local is not None:
            return local
        cached = cache / f"{clip['sha256']}.{clip['format']}"
        if not cached.exists():
            data = catalog.storage.read_bytes(key)
            if hashlib.sha256(data).hexdigest() != clip["sha256"]:
                raise HeirloomError(
                    f"the stored clip {clip['clip_id']} does not match its SHA-256; run `heirloom audit`"
                )
            tmp = cached.with_suffix(".part")
            tmp.write_bytes(data)
            tmp.replace(cached)
        return cached

    @app.get(
        "/v1/clips/{clip_id}",
        response_class=FileResponse,
        responses={
            200: {"content": {t: {} for t in CLIP_MEDIA_TYPES.values()}, "description": "The clip's audio"},
            206: {"description": "Part of the clip (Range)"},
            304: {"description": "Not modified (If-None-Match)"},
            **responses(401, 404, 410, 422, 429),
        },
        tags=["clips"],
    )
    def get_clip(
        clip_id: Annotated[str, PathParam(pattern=ID, max_length=64)],
        me: Me,
        if_none_match: Annotated[str | None, Header()] = None,
    ) -> Response:
        """The clip's audio, streamed, with Range support, its SHA-256 as ETag and the disclosure in headers."""
        clip = clip_row(me, clip_id)
        etag = f'"{clip["sha256"]}"'
        headers = {
            "ETag": etag,
            "Cache-Control": "private, max-age=3600",
            "X-Heirloom-Disclosure": _header_text(clip["disclosure_text"]),
            "X-Heirloom-Credit": _header_text(clip["credit_line"]),
            "X-Heirloom-Clip": clip["clip_id"],
        }
        if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
            return Response(status_code=304, headers=headers)
        fmt = clip["format"] or "wav"
        return FileResponse(
            local_copy(clip), media_type=CLIP_MEDIA_TYPES.get(fmt, "application/octet-stream"), headers=headers,
            filename=f"{clip['clip_id']}.{fmt}", content_disposition_type="inline",
        )  # fmt: skip

    @app.get("/v1/clips/{clip_id}/manifest", responses=responses(401, 404, 410, 422, 429), tags=["clips"])
    def get_manifest(clip_id: Annotated[str, PathParam(pattern=ID, max_length=64)], me: Me) -> JSONResponse:
        """The clip's Content Credentials, as validated against the site's root."""
        from tasks.provenance import clip_credentials, load_identity

        clip = clip_row(me, clip_id)
        try:
            root = load_identity().root_pem
        except HeirloomError:
            root = None
        creds = clip_credentials(catalog.storage, clip, root_pem=root)
        return JSONResponse({"clip_id": clip_id, "credentials": creds.to_dict() if creds else None})

    @app.get(
        "/v1/exhibits/{exhibit_id}/clips",
        response_model=ClipsOut,
        responses=responses(401, 404, 422, 429),
        tags=["clips"],
    )
    def list_clips(exhibit_id: ExhibitId, me: Me) -> ClipsOut:
        """The exhibit's clips, ready and withdrawn."""
        own(me, exhibit_id)
        clips = [c for c in catalog.rows("clips") if c["exhibit_id"] == me.exhibit_id]
        return ClipsOut(
            exhibit_id=exhibit_id, clips=[_clip_out(c) for c in sorted(clips, key=lambda c: c["created_at"])]
        )

    return app


def app_from_environment() -> FastAPI:
    """The app of an API worker process: the archive from ``HEIRLOOM_ARCHIVE`` (uvicorn's factory)."""
    return create_app()
