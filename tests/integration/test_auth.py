"""API keys: the auth matrix over every endpoint, revocation, rate limits, body limits, ids."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app.auth import SCOPES, Authenticator, KeyStore, RateLimited, any_key
from app.main import create_app
from core.connect import connect_redis
from core.keys import Keys
from core.settings import Settings
from tests.conftest import admin_token


def _scope_of(route: Any) -> str | None:
    """The scope a route requires; "any" for any valid key; None if it is open."""
    for dep in route.dependant.dependencies:
        fn = dep.call
        if fn is any_key:
            return "any"
        closure = getattr(fn, "__closure__", None) or ()
        for cell in closure:
            if cell.cell_contents in SCOPES:
                return str(cell.cell_contents)
    return None


def _endpoints(app: Any) -> list[tuple[str, str, str | None]]:
    """(method, path, scope) of every API route, including those of included routers."""
    routes: list[Any] = []
    for r in app.routes:
        if isinstance(r, APIRoute):
            routes.append(r)
        elif hasattr(r, "effective_route_contexts"):  # FastAPI >= 0.16x included routers
            routes.extend(r.effective_route_contexts())
        elif hasattr(r, "routes"):
            routes.extend(x for x in r.routes if isinstance(x, APIRoute))
    return [(m, r.path, _scope_of(r)) for r in routes for m in sorted(r.methods)]


def _concrete(path: str) -> str:
    return re.sub(
        r"\{(\w+)(?::\w+)?\}",  # {name} or {name:convertor}
        lambda m: {"job_id": "0" * 32, "dead_id": "1-1"}.get(m.group(1), "x1"),
        path,
    )


def test_every_endpoint_enforces_its_scope(settings: Settings) -> None:
    app = create_app(settings)
    endpoints = _endpoints(app)
    protected = [(m, p, s) for m, p, s in endpoints if s is not None]
    open_ = {p for _, p, s in endpoints if s is None}
    assert open_ == {"/healthz", "/readyz"}
    assert {s for *_, s in protected} == {*SCOPES, "any"}
    assert [(m, p) for m, p, s in protected if s == "any"] == [("GET", "/v1/auth/me")]
    assert ("GET", "/metrics", "admin") in protected
    # Apps write profiles with the key they log events with; reading personal data is admin.
    assert ("PUT", "/v1/users/{user_id}", "events") in protected
    assert ("GET", "/v1/users/{user_id}", "admin") in protected
    keys = {s: admin_token(settings, (s,)) for s in SCOPES}
    with TestClient(app) as c:
        for method, path, scope in protected:
            url = _concrete(path)
            none = c.request(method, url)
            assert none.status_code == 401, (method, path, none.text)
            assert none.headers["www-authenticate"] == "Bearer"
            assert "Authorization: Bearer" in none.json()["error"]["message"]
            bad = c.request(method, url, headers={"Authorization": "Bearer vtg_nope"})
            assert bad.status_code == 401, (method, path)
            if scope == "any":
                for ok in SCOPES:
                    res = c.request(method, url, headers={"Authorization": f"Bearer {keys[ok]}"})
                    assert res.status_code == 200, (method, path, ok, res.text)
                continue
            wrong = next(s for s in SCOPES if s not in (scope, "admin"))
            res = c.request(method, url, headers={"Authorization": f"Bearer {keys[wrong]}"})
            assert res.status_code == 403, (method, path, wrong)
            assert f"'{scope}' scope" in res.json()["error"]["message"]
            for ok in {scope, "admin"}:
                res = c.request(method, url, headers={"Authorization": f"Bearer {keys[ok]}"})
                assert res.status_code not in (401, 403), (method, path, ok, res.text)
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200


def test_keys_are_stored_hashed_and_revocable(settings: Settings) -> None:
    r = connect_redis(settings)
    store = KeyStore(r, Keys.of(settings.redis))
    token, rec = store.create("app", ["recommend"], rate=100, burst=100)
    secret = token.split("_", 2)[2]
    stored = r.hgetall(Keys.of(settings.redis).api_key(rec.key_id))
    assert secret.encode() not in b"".join(stored.values())  # only its digest
    assert store.verify(token) == rec
    assert store.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    with TestClient(create_app(settings)) as c:
        c.app.state.vantage.auth.cache_s = 0  # revocation visible at once in this test
        h = {"Authorization": f"Bearer {token}"}
        assert c.get("/v1/recommendations", params={"user_id": "u"}, headers=h).status_code == 200
        assert store.revoke(rec.key_id)
        res = c.get("/v1/recommendations", params={"user_id": "u"}, headers=h)
        assert res.status_code == 401 and "revoked" in res.json()["error"]["message"]
    with pytest.raises(ValueError, match="scopes"):
        store.create("x", ["superuser"], rate=1, burst=1)
    r.close()


def test_rate_limit_answers_429_with_retry_after(settings: Settings) -> None:
    r = connect_redis(settings)
    token, _ = KeyStore(r, Keys.of(settings.redis)).create("slow", ["recommend"], rate=0.5, burst=2)
    with TestClient(create_app(settings)) as c:
        h = {"Authorization": f"Bearer {token}"}
        codes = [
            c.get("/v1/recommendations", params={"user_id": "u"}, headers=h).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 429]
        res = c.get("/v1/recommendations", params={"user_id": "u"}, headers=h)
        assert res.status_code == 429 and int(res.headers["retry-after"]) >= 1
        assert "rate limit" in res.json()["error"]["message"]
        time.sleep(2.1)  # one token back at 0.5/s
        assert c.get("/v1/recommendations", params={"user_id": "u"}, headers=h).status_code == 200
    r.close()


def test_rate_limit_leases_across_processes_stay_within_the_limit(settings: Settings) -> None:
    """Two API processes spending leases of one busy key admit no more than the bucket holds,
    and little less (at most one lease each is left unspent)."""
    r = connect_redis(settings)
    keys = Keys.of(settings.redis)
    _, rec = KeyStore(r, keys).create("busy", ["recommend"], rate=200, burst=400)
    replicas = [Authenticator(r, keys), Authenticator(r, keys)]
    admitted = refused = 0
    t0 = time.monotonic()
    for k in range(1000):
        try:
            replicas[k % 2].check_rate(rec)
            admitted += 1
        except RateLimited:
            refused += 1
    elapsed = time.monotonic() - t0
    want = 10  # 50 ms of 200/s
    assert refused > 0
    assert 400 - 2 * want <= admitted <= 400 + 200 * elapsed + 2 * want
    r.close()


def test_body_limit_request_ids_and_metrics(client: TestClient, settings: Settings) -> None:
    big = b'{"items": [' + b'{"item_id": "a", "title": "' + b"x" * (5 * 1024 * 1024) + b'"}]}'
    res = client.post("/v1/items/batch", content=big, headers={"content-type": "application/json"})
    assert res.status_code == 413 and "smaller batches" in res.json()["error"]["message"]
    # Without a Content-Length (chunked), counted as it arrives: still 413, not 400.
    chunks = iter([b'{"items": [{"item_id": "a", "title": "', b"x" * (5 * 1024 * 1024), b'"}]}'])
    res = client.post(
        "/v1/items/batch", content=chunks, headers={"content-type": "application/json"}
    )
    assert res.status_code == 413, res.text
    assert res.json()["error"]["code"] == "payload_too_large"
    odd = client.request("FOOBAR", "/v1/items/x1")
    assert odd.status_code == 405 and odd.json()["error"]["code"] == "method_not_allowed"

    res = client.get("/v1/recommendations", params={"user_id": "u"})
    rid = res.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    mine = client.get(
        "/v1/recommendations", params={"user_id": "u"}, headers={"X-Request-ID": "abc-1"}
    )
    assert mine.headers["x-request-id"] == "abc-1"
    evil = client.get("/healthz", headers={"X-Request-ID": "a b\nc"})
    assert evil.headers["x-request-id"] != "a b\nc"

    client.get("/v1/recommendations", params={"user_id": "u", "surface": "trending"})
    client.get("/v1/recommendations", params={"user_id": "u", "surface": "nope"})  # 422

    text = client.get("/metrics").text
    for status, surface in (("200", "homepage"), ("200", "trending"), ("422", "other")):
        assert (
            'vantage_http_request_duration_seconds_count{method="GET",route="/v1/recommendations",'
            f'status="{status}",surface="{surface}"}}' in text
        )
    assert "vantage_result_cache_total" in text and "vantage_queue_length" in text
    assert 'vantage_dependency_up{dep="redis"} 1.0' in text


def test_idempotency_keys_are_scoped_to_the_api_key(settings: Settings) -> None:
    a = {"Authorization": f"Bearer {admin_token(settings, ('events',))}"}
    b = {"Authorization": f"Bearer {admin_token(settings, ('events',))}"}
    batch = [{"user_id": "idem-u", "item_id": "i1", "type": "view", "timestamp": 1_700_000_000}]
    with TestClient(create_app(settings)) as c:
        first = c.post("/v1/interactions", json=batch, headers={**a, "Idempotency-Key": "k-1"})
        assert first.status_code == 202
        # Another caller's identical key and body is its own request: new ids, not a replay.
        other = c.post("/v1/interactions", json=batch, headers={**b, "Idempotency-Key": "k-1"})
        assert other.status_code == 202 and "Idempotent-Replayed" not in other.headers
        assert other.json()["event_ids"] != first.json()["event_ids"]
        # A third caller reusing the key for other events is not refused because of it.
        third = {"Authorization": f"Bearer {admin_token(settings, ('events',))}"}
        changed = [{**batch[0], "item_id": "i2"}]
        res = c.post("/v1/interactions", json=changed, headers={**third, "Idempotency-Key": "k-1"})
        assert res.status_code == 202 and "Idempotent-Replayed" not in res.headers
        again = c.post("/v1/interactions", json=batch, headers={**a, "Idempotency-Key": "k-1"})
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["event_ids"] == first.json()["event_ids"]
