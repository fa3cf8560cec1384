"""The exception tree of the API, rendered by one handler.

    VantageError (500)            base; `code` is a stable machine-readable string
    ├── NotFound (404)            the named item or user does not exist
    ├── Conflict (409)            an Idempotency-Key reused for a different request
    ├── InvalidRequest (422)      input is well-formed JSON but makes no sense together
    └── DependencyUnavailable (503, Retry-After)
                                  Redis or Milvus did not answer; the request may be retried

Request validation errors from FastAPI are rendered in the same shape:
`{"error": {"code": ..., "message": ..., "details": [...]}}` where `message` says what to fix.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from indexing.models import ID_PATTERN


class VantageError(Exception):
    status_code = 500
    code = "internal_error"
    headers: dict[str, str] | None = None

    def __init__(self, message: str, *, details: Any = None):
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(VantageError):
    status_code = 404
    code = "not_found"


class Conflict(VantageError):
    status_code = 409
    code = "conflict"


class InvalidRequest(VantageError):
    status_code = 422
    code = "invalid_request"


class DependencyUnavailable(VantageError):
    status_code = 503
    code = "dependency_unavailable"
    headers = {"Retry-After": "1"}


def _body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        err["details"] = details
    return {"error": err}


# Regex patterns are precise but unreadable; say in words what they accept.
PATTERN_WORDS = {
    ID_PATTERN: "must be 1-128 characters: letters, digits and . _ : @ - "
    "(starting with a letter or digit)",
}


def _describe(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    details = []
    for e in errors:
        parts = [str(p) for p in e.get("loc", ())]
        where = parts.pop(0) if parts and parts[0] in ("body", "query", "path", "header") else None
        loc = ".".join(parts) or (where or "body")
        msg = str(e.get("msg", "invalid"))
        pattern = (e.get("ctx") or {}).get("pattern")
        if e.get("type") == "string_pattern_mismatch" and pattern in PATTERN_WORDS:
            msg = PATTERN_WORDS[pattern]
        details.append({"field": loc, "in": where, "message": msg, "type": e.get("type")})
    head = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
    if len(details) > 5:
        head += f"; and {len(details) - 5} more"
    return head, details


def error_response(exc: VantageError) -> JSONResponse:
    """The one rendering of every Vantage error."""
    return JSONResponse(
        _body(exc.code, exc.message, exc.details), status_code=exc.status_code, headers=exc.headers
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Framework-level errors (unknown route, wrong method, ...) in the same shape.
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(
            _body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(VantageError)
    async def _vantage(_: Request, exc: VantageError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, details = _describe(list(exc.errors()))
        return JSONResponse(_body("invalid_request", message, details), status_code=422)
