"""How errors are answered over HTTP: one body, one handler (the tree is in `core.errors`).

Request validation errors from FastAPI are rendered in the same shape:
`{"error": {"code": ..., "message": ..., "details": [...]}}` where `message` says what to fix.
A body that is not JSON, or not UTF-8, is one of them: 422 `invalid_request` on every route.

Every route documents the error answers it can give (`error_responses`), with this body.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.domain import ID_PATTERN, MULTILINE_PATTERN, NONBLANK_PATTERN, TEXT_PATTERN
from core.errors import VantageError


class ErrorInfo(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. invalid_request")
    message: str = Field(description="what went wrong and what to change")
    details: Any = Field(
        None, description="for invalid_request: one entry per field (field, in, message, type)"
    )


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorInfo


_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "string"},
    }
}
_ERROR_DOCS: dict[int, dict[str, Any]] = {
    401: {"description": "missing, invalid or revoked API key (`unauthorized`)"},
    403: {"description": "the API key lacks the scope this route needs (`forbidden`)"},
    404: {"description": "the named resource does not exist (`not_found`)"},
    409: {"description": "conflicts with an earlier request (`conflict`)"},
    413: {"description": "request body over the size limit (`payload_too_large`)"},
    422: {
        "description": "invalid input: malformed JSON or UTF-8, a field out of range or of "
        "the wrong type (`invalid_request`); `message` says what to fix"
    },
    429: {"description": "over the API key's rate limit (`rate_limited`)", "headers": _RETRY_AFTER},
    503: {
        "description": "Redis or Milvus is unavailable (`dependency_unavailable`); retry",
        "headers": _RETRY_AFTER,
    },
}

# What every route that takes an API key can answer besides its own errors.
AUTHED = (401, 403, 422, 429, 503)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for these error status codes, all with `ErrorBody`."""
    return {c: {"model": ErrorBody, **_ERROR_DOCS[c]} for c in codes}


def _body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        err["details"] = details
    return {"error": err}


# Regex patterns are precise but unreadable; say in words what they accept.
PATTERN_WORDS = {
    ID_PATTERN: "must be 1-128 characters: letters, digits and . _ : @ - "
    "(starting with a letter or digit)",
    TEXT_PATTERN: "must not contain control characters (NUL, escape, ...)",
    NONBLANK_PATTERN: "must contain a visible character and no control characters",
    MULTILINE_PATTERN: "must not contain control characters other than tab and line breaks",
}
# Branch names of the body unions (one object or a list of them): not fields, left out.
UNION_TAGS = {"one", "many"}


def _describe(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    details = []
    for e in errors:
        parts = [str(p) for p in e.get("loc", ()) if p not in UNION_TAGS]
        where = parts.pop(0) if parts and parts[0] in ("body", "query", "path", "header") else None
        loc = ".".join(parts) or (where or "body")
        msg = str(e.get("msg", "invalid"))
        if e.get("type") == "json_invalid":
            # loc is ("body", <character offset>): say it in words.
            at = parts[0] if parts else "?"
            loc = "body"
            msg = f"not valid JSON ({(e.get('ctx') or {}).get('error', 'decode error')} "
            msg += f"at character {at})"
        ctx = e.get("ctx") or {}
        pattern = ctx.get("pattern")
        if e.get("type") == "string_pattern_mismatch" and pattern in PATTERN_WORDS:
            msg = PATTERN_WORDS[pattern]
        elif e.get("type") == "literal_error":
            # "Input should be 'view', 'click' or 'rate'" -> "must be one of view, click, rate"
            options = str(ctx.get("expected", "")).replace(" or ", ", ").replace("'", "")
            msg = f"must be one of {options}"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
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


def allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI schema gives the request's path.

    Starlette's 405 names only the first route that matched, and FastAPI has a route per
    method. A literal path (`/v1/items/batch`) wins over a template that also matches it
    (`/v1/items/{item_id}`), as OpenAPI has it."""
    path = request.url.path
    matched: list[tuple[int, list[str]]] = []
    for template, ops in request.app.openapi()["paths"].items():
        if _template_regex(template).fullmatch(path):
            matched.append((template.count("{"), [m.upper() for m in ops]))
    if not matched:
        return []
    fewest = min(n for n, _ in matched)
    return sorted({m for n, methods in matched if n == fewest for m in methods})


@functools.cache
def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Framework-level errors (unknown route, wrong method, ...) in the same shape.
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
            # The framework could not decode the body (bytes that are not UTF-8): the same
            # answer as for malformed JSON, on every route.
            return JSONResponse(
                _body(
                    "invalid_request",
                    f"body: not valid UTF-8 JSON ({exc.__cause__}); send JSON encoded as UTF-8",
                    [
                        {
                            "field": "body",
                            "in": "body",
                            "message": "not valid UTF-8",
                            "type": "json_invalid",
                        }
                    ],
                ),
                status_code=422,
            )
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = exc.headers
        message = str(exc.detail)
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
            message = f"method {request.method} not allowed here; use {', '.join(allowed)}"
        return JSONResponse(_body(code, message), status_code=exc.status_code, headers=headers)

    @app.exception_handler(VantageError)
    async def _vantage(_: Request, exc: VantageError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, details = _describe(list(exc.errors()))
        return JSONResponse(_body("invalid_request", message, details), status_code=422)
