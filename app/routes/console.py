"""The operator console: a static web app at /console, on by `serving.console_enabled`.

The page, its scripts (one ES module per screen) and its stylesheet are files under
`app/console/static/`, served by this process: nothing comes from a CDN, so the console works
offline. Loading them needs no key; everything the console shows comes from the public API,
called by the browser with the operator's key (`Authorization: Bearer`, kept in the tab's
sessionStorage), so a key sees exactly what its scopes allow anywhere else. Plain routes, as
for /docs (`app.docs`): public, not API operations, and left out of the OpenAPI schema.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from core.settings import Settings

URL = "/console"
ASSETS_URL = f"{URL}/static"
STATIC_DIR = Path(__file__).resolve().parents[1] / "console" / "static"
# Everything from this origin only: a script or stylesheet from anywhere else would not load
# (the console must work offline), and the page calls no other host with the key.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class _Assets(StaticFiles):
    """The console's files, revalidated on every load (ETag): after an upgrade the browser
    never runs a cached module beside a new one."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the console at /console and its assets at /console/static, if the setting is on."""
    if not settings.serving.console_enabled:
        return
    template = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    app.mount(ASSETS_URL, _Assets(directory=STATIC_DIR), name="console-static")

    async def page(request: Request) -> HTMLResponse:
        # Behind a proxy that strips a prefix, the page's links and API calls keep it.
        root = html.escape(request.scope.get("root_path", ""), quote=True)
        return HTMLResponse(template.replace("{{root}}", root), headers=HEADERS)

    app.add_route(URL, page, include_in_schema=False)
