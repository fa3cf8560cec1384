"""ASGI middleware: request ids, request metrics, and the request body size limit."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from core.logs import request_id

_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}


class RequestMiddleware:
    """Per HTTP request: an id (the caller's `X-Request-ID` if sane, else a new one) in the
    logs and the response headers; latency by route template and surface; and 413 for a
    body over the limit, checked on the declared length and on the bytes actually sent."""

    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app = app
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        rid = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        token = request_id.set(rid)
        status = {"code": 500}
        t0 = time.perf_counter()

        async def send_with_id(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                status["code"] = msg["status"]
                msg.setdefault("headers", [])
                msg["headers"] = [*msg["headers"], (b"x-request-id", rid.encode())]
            await send(msg)

        try:
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                await self._too_large(send_with_id)
                return
            seen = 0

            async def counted() -> Message:
                nonlocal seen
                msg = await receive()
                if msg["type"] == "http.request":
                    seen += len(msg.get("body", b""))
                    if seen > self.max_body:
                        # Raised while the framework reads the body: it answers 413 as is.
                        raise HTTPException(413, self._too_large_message())
                return msg

            await self.app(scope, counted, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            surface = _surface(scope) if template == SURFACE_LABELLED else ""
            metrics.REQUESTS.labels(
                template, scope["method"], str(status["code"]), surface
            ).observe(time.perf_counter() - t0)
            request_id.reset(token)

    def _too_large_message(self) -> str:
        return f"request body over {self.max_body} bytes: send smaller batches"

    async def _too_large(self, send: Any) -> None:
        body = json.dumps(
            {"error": {"code": "payload_too_large", "message": self._too_large_message()}}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


SURFACE_LABELLED = "/v1/recommendations"


def _surface(scope: Scope) -> str:
    """The request's surface, for the latency label: as the route read it (`request.state`
    .surface), else from the query string (a request refused before the route read it)."""
    s = scope.get("state", {}).get("surface")
    if s is None:
        from urllib.parse import parse_qs

        qs = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        s = (qs.get("surface") or ["homepage"])[0]
    app = scope.get("app")
    state = getattr(getattr(app, "state", None), "vantage", None)
    known = state.settings.surfaces if state is not None else ()
    return s if s in known else "other"  # bounded label values
