"""The exception tree; the API renders every one of them with its status code.

    VantageError (500)            base; `code` is a stable machine-readable string
    ├── NotFound (404)            the named item or user does not exist
    ├── Conflict (409)            an Idempotency-Key reused for a different request
    ├── InvalidRequest (422)      input is well-formed JSON but makes no sense together
    ├── DependencyUnavailable (503, Retry-After)
    │   │                         Redis or Milvus did not answer; the request may be retried
    │   └── DependencyDown        (core.resilience) raised at the store boundary by
    │                             `guarded()`, with a `reason` (redis_timeout, ...): the read
    │                             path degrades on it instead of answering 503
    └── (in app.auth) Unauthorized (401), Forbidden (403), RateLimited (429)

`CircuitOpen` (core.resilience) never leaves `guarded()`: an open breaker is a DependencyDown.
"""

from __future__ import annotations

from typing import Any


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
