"""/docs and /redoc work offline: every asset they load is served by the app itself."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from core.settings import Settings

BASE = "http://testserver"
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


class _Refs(HTMLParser):
    """Every URL a page makes the browser fetch: src=, href= and url(...) in inline styles."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def _urls_in(html: str) -> list[str]:
    parser = _Refs()
    parser.feed(html)
    # Absolute URLs anywhere else (inline scripts start Swagger UI with its settings).
    quoted = re.findall(r"""['"]((?:https?:)?//[^'"\s]+)['"]""", html)
    return parser.urls + quoted


@pytest.fixture(scope="module")
def client() -> TestClient:
    # No lifespan (no `with`): the docs pages need neither Milvus nor Redis.
    return TestClient(create_app(Settings(env="test")), base_url=BASE)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_nothing_from_another_host(client: TestClient, page: str) -> None:
    res = client.get(page)
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    urls = _urls_in(res.text)
    assert urls, res.text
    assets = [u for u in urls if not u.endswith("openapi.json")]
    assert assets, urls
    for url in urls:
        absolute = urljoin(BASE + page, url)
        assert urlparse(absolute).netloc == "testserver", f"{page} loads {url}"
    for url in assets:
        got = client.get(url)
        assert got.status_code == 200, url
        expected = next(t for ext, t in CONTENT_TYPES.items() if url.endswith(ext))
        assert expected in got.headers["content-type"], (url, got.headers["content-type"])
        assert len(got.content) > 0


def test_swagger_css_pulls_in_no_remote_resource(client: TestClient) -> None:
    css = client.get("/docs-assets/swagger-ui.css").text
    for ref in re.findall(r"url\(\s*['\"]?([^'\")]+)", css):
        assert ref.startswith("data:") or "//" not in ref, ref


def test_swagger_ui_is_configured_without_the_online_validator(client: TestClient) -> None:
    html = client.get("/docs").text
    assert '"validatorUrl": null' in html
    assert "/openapi.json" in html and "/docs/oauth2-redirect" in html
    redirect = client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200 and "oauth2" in redirect.text.lower()
    assert client.get("/openapi.json").status_code == 200
