"""The exceptions the client raises: one tree, each API error class named for the server's
`code` and carrying its HTTP status.

    VantageError                        everything the client raises
    ├── VantageConnectionError          no answer (connect or read failure, timeout), retries
    │                                   spent or not safe: the request may or may not be applied
    ├── UnexpectedResponse              an answer that is not the documented body
    └── APIError                        the server answered an error: `status_code`, `code`,
        │                               `message` (what to fix), `details`, `request_id`
        ├── BadRequest (400)            bad_request
        ├── Unauthorized (401)          unauthorized: missing, invalid or revoked API key
        ├── Forbidden (403)             forbidden: the key lacks the route's scope
        ├── NotFound (404)              not_found
        ├── MethodNotAllowed (405)      method_not_allowed
        ├── Conflict (409)              conflict: an Idempotency-Key reused for other events
        ├── PayloadTooLarge (413)       payload_too_large
        ├── UnsupportedMediaType (415)  unsupported_media_type
        ├── InvalidRequest (422)        invalid_request: `details` has one entry per field
        │   └── TooManyRules (422)      too_many_rules
        ├── RateLimited (429)           rate_limited: `retry_after` seconds
        └── ServerError (5xx)           internal_error, or a proxy's answer
            └── DependencyUnavailable (503)  dependency_unavailable: `retry_after` seconds

A `code` this client does not know falls back to the class of its HTTP status.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx


class VantageError(Exception):
    """Base of every exception the client raises."""


class VantageConnectionError(VantageError):
    """The server could not be reached or did not answer (see `__cause__`)."""


class UnexpectedResponse(VantageError):
    """The server answered something the client cannot read as the documented body."""

    def __init__(self, message: str, response: httpx.Response) -> None:
        super().__init__(message)
        self.response = response


class APIError(VantageError):
    """An error answer of the API, rendered by the server as `{"error": {code, message}}`."""

    status_code: int = 0
    code: str = "http_error"

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str,
        details: Any = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.message = message
        self.status_code = status_code
        self.code = code
        self.details = details
        self.response = response
        headers = response.headers if response is not None else httpx.Headers()
        self.request_id: str | None = headers.get("x-request-id")
        self.retry_after: float | None = parse_retry_after(headers.get("retry-after"))


class BadRequest(APIError):
    status_code = 400
    code = "bad_request"


class Unauthorized(APIError):
    status_code = 401
    code = "unauthorized"


class Forbidden(APIError):
    status_code = 403
    code = "forbidden"


class NotFound(APIError):
    status_code = 404
    code = "not_found"


class MethodNotAllowed(APIError):
    status_code = 405
    code = "method_not_allowed"


class Conflict(APIError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(APIError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(APIError):
    status_code = 415
    code = "unsupported_media_type"


class InvalidRequest(APIError):
    status_code = 422
    code = "invalid_request"


class TooManyRules(InvalidRequest):
    code = "too_many_rules"


class RateLimited(APIError):
    status_code = 429
    code = "rate_limited"


class ServerError(APIError):
    status_code = 500
    code = "internal_error"


class DependencyUnavailable(ServerError):
    status_code = 503
    code = "dependency_unavailable"


_CLASSES: tuple[type[APIError], ...] = (
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidRequest,
    TooManyRules,
    RateLimited,
    ServerError,
    DependencyUnavailable,
)
BY_CODE: dict[str, type[APIError]] = {c.code: c for c in _CLASSES}
# The first class of each status: the fallback for a code this client does not know.
BY_STATUS: dict[int, type[APIError]] = {}
for _cls in _CLASSES:
    BY_STATUS.setdefault(_cls.status_code, _cls)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_fields(response: httpx.Response) -> tuple[str | None, str, Any]:
    """(code, message, details) of an error body; a body in another shape gives no code."""
    try:
        err = response.json()["error"]
        return str(err["code"]), str(err["message"]), err.get("details")
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()[:500]
        return None, text or response.reason_phrase or "error", None


def error_from_response(response: httpx.Response) -> APIError:
    """The exception for an error answer: by the body's `code`, else by the HTTP status."""
    code, message, details = _error_fields(response)
    status = response.status_code
    by_status = BY_STATUS.get(status)
    cls = BY_CODE.get(code or "") or by_status
    if cls is None:
        cls = ServerError if status >= 500 else APIError
    return cls(
        message,
        status_code=status,
        code=code or (by_status.code if by_status else "http_error"),
        details=details,
        response=response,
    )
