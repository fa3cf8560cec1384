"""How the console is served: without a key, from this process only, out of the API schema,
and not at all with `serving.console_enabled` off. No servers needed (no lifespan runs)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from app.main import create_app
from app.routes.console import STATIC_DIR
from core.settings import Settings


def _client(**serving: object) -> TestClient:
    s = Settings(env="test")
    s = s.model_copy(update={"serving": s.serving.model_copy(update=serving)})
    return TestClient(create_app(s))


def test_the_page_and_every_asset_load_without_a_key_from_this_process() -> None:
    c = _client()
    page = c.get("/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    # Every script and stylesheet the page names is served here (no CDN, no other host) ...
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/console/static/app.js" in refs and "/console/static/console.css" in refs
    assert all(r.startswith("/console/static/") or r.startswith("data:") for r in refs), refs
    # ... and so is every module the scripts import.
    for js in STATIC_DIR.glob("*.js"):
        res = c.get(f"/console/static/{js.name}")
        assert res.status_code == 200, js.name
        assert "javascript" in res.headers["content-type"], (js.name, res.headers)
        assert res.headers["cache-control"] == "no-cache" and res.headers["etag"]
        for dep in re.findall(r'from "\./([\w.]+)"', res.text):
            assert (STATIC_DIR / dep).is_file(), (js.name, dep)
    assert c.get("/console/static/console.css").headers["content-type"].startswith("text/css")
    assert c.get("/console/static/nope.js").status_code == 404


def test_the_console_is_not_an_api_operation() -> None:
    c = _client()
    schema = c.get("/openapi.json").json()
    assert not [p for p in schema["paths"] if p.startswith("/console")]
    assert schema == _client(console_enabled=False).get("/openapi.json").json()
    assert c.post("/console").status_code == 405


def test_a_root_path_prefixes_the_page_links() -> None:
    s = Settings(env="test")
    c = TestClient(create_app(s), root_path="/vantage")
    text = c.get("/console").text
    assert 'content="/vantage"' in text and 'src="/vantage/console/static/app.js"' in text


def test_off_with_the_setting() -> None:
    c = _client(console_enabled=False)
    assert c.get("/console").status_code == 404
    assert c.get("/console/static/app.js").status_code == 404
    assert c.get("/healthz").status_code in (200, 503)  # the API itself is still there
