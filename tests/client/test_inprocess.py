"""The client against the real app in-process: the sync client over the `client` fixture
(Starlette's TestClient is an `httpx.Client`), the async one over `httpx.ASGITransport`.

Real Redis and Milvus (the session's servers); writes are applied by the test's `worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from vantage_client import (
    APIError,
    AsyncVantageClient,
    Conflict,
    Forbidden,
    Interaction,
    InvalidRequest,
    Item,
    ItemFields,
    KeyIn,
    NotFound,
    Retry,
    RuleIn,
    Unauthorized,
    UserFields,
    VantageClient,
)
from vantage_client.routes import ROUTES

from app.main import create_app
from core.settings import Settings
from tests.conftest import admin_token
from tests.integration.conftest import CATALOGUE

pytestmark = pytest.mark.integration

LIKED = [
    Interaction(user_id="ann", item_id="space-1", type="like"),
    Interaction(user_id="ann", item_id="space-2", type="watch", device="tv"),
]


def _route_of(request: httpx.Request) -> str | None:
    """The ROUTES name whose method and path template the request matches."""
    for name, (method, template) in ROUTES.items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if request.method == method and re.fullmatch(pattern, request.url.path):
            return name
    return None


def _recorder(http: httpx.Client | httpx.AsyncClient) -> list[httpx.Request]:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> None:
        sent.append(request)

    async def record_async(request: httpx.Request) -> None:
        sent.append(request)

    hook = record_async if isinstance(http, httpx.AsyncClient) else record
    http.event_hooks = {**http.event_hooks, "request": [*http.event_hooks["request"], hook]}
    return sent


def _catalogue() -> list[Item]:
    return [Item(item_id=i, **body) for i, body in CATALOGUE.items()]


def test_every_client_method_reaches_its_route(client: TestClient, worker: Any) -> None:
    vantage = VantageClient(http=client)
    sent = _recorder(client)
    reached: dict[str, str | None] = {}

    def call(name: str, *args: Any, **kwargs: Any) -> Any:
        before = len(sent)
        try:
            result = getattr(vantage, name)(*args, **kwargs)
        except APIError as e:
            result = e
        reached[name] = _route_of(sent[before])
        return result

    assert call("health").status == "ok" and call("ready").status == "ready"
    assert "# HELP" in call("metrics")
    fields = ItemFields(title="Sourdough at home", categories=["cooking"], tags=["bread"])
    assert len(call("put_item", "tour-1", fields).event_ids) == 1
    assert len(call("put_items", [Item(item_id="tour-2", title="Second")]).event_ids) == 1
    worker.drain()
    assert call("get_item", "tour-1").tags == ["bread"]
    assert call("search_items", "baking bread", limit=1).items[0].item_id == "tour-1"
    assert call("delete_item", "tour-2").status == "queued"
    assert call("put_user", "ann", UserFields(birth_year=1990, region="US")).profile.region == "US"
    patched = call("patch_user", "ann", UserFields(language="en")).profile
    assert (patched.language, patched.birth_year) == ("en", 1990)
    assert len(call("log_interactions", LIKED[0]).event_ids) == 1
    assert call("recommend", "ann", limit=3).user_id == "ann"
    assert call("cached_recommendations", "ann", limit=3).source == "result_cache"
    assert call("why_not", "ann", "tour-1").stage in ("served", "hard_filter", "not_retrieved")
    assert call("why_not", "ann", "tour-1", profiling=False).profiling is False
    assert call("get_user", "ann").user_id == "ann"
    assert call("erase_user", "bob", wait_s=0).status == "pending"  # no worker is running
    assert call("get_erasure", "bob").user_id == "bob"
    assert "ann" in call("list_users", prefix="an").items
    job = call("reindex")
    assert job.kind == "reindex" and call("refresh_models").kind == "train"
    assert set(call("list_models")) == {"cf", "ranker"}
    assert isinstance(call("make_current", "cf", "v1"), Conflict)  # cf: retrain instead
    assert call("ranker_drift").min_rows > 0
    assert call("canary").canary is None
    assert isinstance(call("start_canary", "v9", share=0.1), Conflict)  # no current ranker
    assert isinstance(call("stop_canary"), NotFound)
    assert call("get_controls", "ann").profiling is True
    assert call("patch_controls", "ann", {"paused": True}).paused is True
    entry = {"kind": "category", "value": "cooking"}
    assert call("add_not_interested", "ann", entry).not_interested[0].value == "cooking"
    assert call("remove_not_interested", "ann", "category", "cooking") is None
    assert call("reset_history", "ann").status == "queued"
    guest = Interaction(session_id="g-1", item_id="tour-1", type="click")
    assert len(call("log_interactions", [guest]).event_ids) == 1
    assert vantage.recommend(session_id="g-1", limit=3).session_id == "g-1"
    assert call("merge_session", "ann", session="g-1").status == "queued"
    assert call("list_ope_candidates").candidates == []
    calm = {"surface": "homepage", "overrides": {"policy": {"mmr_lambda": 0.5}}, "share": 1}
    assert call("put_ope_candidate", "calm", calm).overrides == calm["overrides"]
    est = call("evaluate_offline", {"surface": "homepage", "candidate": "calm"})
    assert est.method == "shadow" and est.refused and est.best() is None  # nothing shadowed yet
    assert call("delete_ope_candidate", "calm") is None
    assert len(call("list_jobs").items) == 2 and call("get_job", job.id).id == job.id
    assert call("list_dead_letters").total == 0
    assert call("replay_dead_letters", ["9-9"]).missing == ["9-9"]
    assert isinstance(call("discard_dead_letter", "9-9"), NotFound)
    assert call("queue").length > 0
    assert call("put_rule", "promo", RuleIn(action="pin", item_id="tour-1", position=1)).position
    assert call("get_rule", "promo").item_id == "tour-1"
    assert [r.rule_id for r in call("list_rules").items] == ["promo"]
    assert call("delete_rule", "promo") is None
    assert call("surface_metrics").rows is not None
    assert call("surface_metrics_hourly", hours=2).hours == 2
    assert call("experiments", hours=2).items == []  # no surface has variants here
    assert call("me").scopes == ["recommend", "events", "catalog", "admin"]
    made = call("create_key", KeyIn(name="web app", scopes=["recommend"]))
    assert made.key.startswith(f"vtg_{made.key_id}_") and made.scopes == ["recommend"]
    assert made.key_id in [k.key_id for k in call("list_keys").items]
    assert call("get_key", made.key_id).name == "web app"
    assert call("revoke_key", made.key_id).revoked_at is not None
    assert reached == {name: name for name in ROUTES}


def test_items_and_profiles_round_trip_as_typed_models(client: TestClient, worker: Any) -> None:
    vantage = VantageClient(http=client)
    accepted = vantage.put_items(_catalogue())
    assert len(accepted.event_ids) == len(CATALOGUE) and not accepted.replayed
    with pytest.raises(NotFound):
        vantage.get_item("space-1")  # queued, not applied yet
    worker.drain()
    item = vantage.get_item("space-1")
    assert item.title == CATALOGUE["space-1"]["title"] and item.categories == ["space"]
    assert vantage.get_item("horror-1").maturity == 18

    stored = vantage.put_user("kid", {"birth_year": 2015, "preferences": {"categories": ["space"]}})
    assert stored.profile is not None and stored.profile.preferences.categories == ["space"]
    # PATCH sends only the fields set: the birth year stays.
    kept = vantage.patch_user("kid", UserFields(region="FR")).profile
    assert kept is not None and (kept.region, kept.birth_year) == ("FR", 2015)
    # PUT replaces the whole profile: fields left out are cleared.
    replaced = vantage.put_user("kid", UserFields(language="fr")).profile
    assert replaced is not None and replaced.birth_year is None

    # Read, change, write back: a fetched item is sent as its fields (no id, no times).
    item.title = "Voyage to the ice giants"
    vantage.put_item("space-1", item)
    vantage.put_user("kid", replaced)
    worker.drain()
    assert vantage.get_item("space-1").title == "Voyage to the ice giants"


def test_rules_crud_and_the_paged_iterator(client: TestClient) -> None:
    vantage = VantageClient(http=client)
    sent = _recorder(client)
    made = vantage.put_rule("news-up", RuleIn(action="boost", category="news", weight=0.3))
    assert (made.rule_id, made.weight, made.surfaces) == ("news-up", 0.3, [])
    replaced = vantage.put_rule("news-up", {"action": "boost", "category": "news", "weight": 0.6})
    assert replaced.weight == 0.6 and replaced.created_at == made.created_at
    assert vantage.put_rule("news-up", replaced).created_at == made.created_at  # round trip
    for n in range(4):
        rule = RuleIn(action="bury", category=f"c{n}", surfaces=["homepage"], note="tidy")
        vantage.put_rule(f"bury-{n}", rule)

    del sent[:]
    ids = [r.rule_id for r in vantage.iter_rules(page_size=2)]
    assert ids == ["bury-0", "bury-1", "bury-2", "bury-3", "news-up"]
    # Three pages, each asking for the one after the previous page's last id.
    assert [r.url.params.get("after") for r in sent] == [None, "bury-1", "bury-3"]
    assert [r.rule_id for r in vantage.iter_rules(surface="related")] == ["news-up"]
    assert vantage.list_rules(limit=1).total == 5

    assert vantage.get_rule("bury-2").note == "tidy"
    assert vantage.delete_rule("bury-2") is None
    with pytest.raises(NotFound) as gone:
        vantage.get_rule("bury-2")
    assert gone.value.message == "no rule 'bury-2'"


def test_error_answers_raise_their_exception_with_the_server_message(
    client: TestClient, settings: Settings
) -> None:
    vantage = VantageClient(http=client)
    with pytest.raises(InvalidRequest) as bad:
        vantage.recommend("ann", "home")
    assert (bad.value.status_code, bad.value.code) == (422, "invalid_request")
    assert bad.value.message.startswith("unknown surface 'home'; valid surfaces: ")
    assert bad.value.request_id and str(bad.value).startswith("422 invalid_request: unknown")

    with pytest.raises(InvalidRequest) as bad:
        vantage.log_interactions([{"user_id": "ann", "item_id": "i", "type": "love"}])
    assert [d["field"] for d in bad.value.details] == ["0.type"]
    assert "must be one of view, click" in bad.value.message

    with pytest.raises(NotFound) as missing:
        vantage.get_item("nope")
    assert missing.value.status_code == 404
    assert missing.value.message.startswith("item 'nope' does not exist")

    with pytest.raises(Unauthorized) as denied:
        VantageClient(http=client, api_key="vtg_000000000000_" + "x" * 32).get_item("nope")
    assert denied.value.message == "invalid or revoked API key"

    reader = VantageClient(http=client, api_key=admin_token(settings, ("recommend",)))
    with pytest.raises(Forbidden) as forbidden:
        reader.put_item("x", ItemFields(title="x"))
    assert "lacks the 'catalog' scope" in forbidden.value.message


def test_interaction_batches_carry_an_idempotency_key(client: TestClient) -> None:
    vantage = VantageClient(http=client)
    sent = _recorder(client)
    first = vantage.log_interactions(LIKED)
    second = vantage.log_interactions(LIKED)
    keys = [r.headers["idempotency-key"] for r in sent]
    assert len(set(keys)) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", k) for k in keys)
    assert first.event_ids != second.event_ids  # two calls, two batches

    again = vantage.log_interactions(LIKED, idempotency_key=keys[0])
    assert again.replayed and again.event_ids == first.event_ids
    with pytest.raises(Conflict):
        vantage.log_interactions(LIKED[:1], idempotency_key=keys[0])


class LoseFirstAnswer(httpx.AsyncBaseTransport):
    """The app's transport, except that the first answer to `path` is lost after the app
    has handled the request (the connection drops on the way back)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, path: str) -> None:
        self.inner, self.path = inner, path
        self.lost: list[httpx.Response] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path == self.path and not self.lost:
            await response.aread()
            self.lost.append(response)
            raise httpx.ReadError("connection reset after the server answered", request=request)
        return response


@contextlib.asynccontextmanager
async def _app_over_asgi(
    settings: Settings, wrap: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app with its lifespan running, behind an `httpx.AsyncClient`."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = wrap(httpx.ASGITransport(app=app))
        async with httpx.AsyncClient(transport=transport, base_url="http://vantage.test") as http:
            yield http


def test_async_a_lost_answer_is_retried_and_the_batch_is_logged_once(
    settings: Settings, worker: Any
) -> None:
    token, waits = admin_token(settings), []
    lossy: list[LoseFirstAnswer] = []

    def lose(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        lossy.append(LoseFirstAnswer(inner, "/v1/interactions"))
        return lossy[0]

    async def scenario() -> None:
        async with _app_over_asgi(settings, lose) as http:
            sent = _recorder(http)
            vantage = AsyncVantageClient(http=http, api_key=token, retry=Retry(sleep=waits.append))
            await vantage.put_items(_catalogue())
            worker.drain()
            before = (await vantage.queue()).length
            accepted = await vantage.log_interactions(LIKED)
            # The lost first answer had these ids; the retry was answered from it.
            assert accepted.replayed and accepted.event_ids == lossy[0].lost[0].json()["event_ids"]
            posts = [r for r in sent if r.url.path == "/v1/interactions"]
            assert len(posts) == 2 and len(waits) == 1
            assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
            assert (await vantage.queue()).length == before + len(LIKED)  # stored once
            worker.drain()
            assert len((await vantage.get_user("ann")).recent) == len(LIKED)
            recs = await vantage.recommend("ann", "homepage", limit=3)
            top = [i.item_id for i in recs.items]
            assert {"space-3", "space-4"} <= set(top) and not {"space-1", "space-2"} & set(top)

    asyncio.run(scenario())


def test_async_dead_letters_are_iterated_page_by_page(
    settings: Settings, stores: Any, worker: Any
) -> None:
    worker.ensure_group()
    for n in range(5):
        stores.redis.xadd(stores.keys.stream(0), {"type": "nonsense", "data": f"{n}", "t": "1"})
    worker.drain()
    token = admin_token(settings)

    async def scenario() -> None:
        async with _app_over_asgi(settings, lambda inner: inner) as http:
            sent = _recorder(http)
            vantage = AsyncVantageClient(http=http, api_key=token)
            letters = [d async for d in vantage.iter_dead_letters(page_size=2)]
            assert len(letters) == 5 and len({d.id for d in letters}) == 5
            assert all("unknown type" in d.error for d in letters)
            assert len(sent) == 3  # pages of 2, 2 and 1
            await vantage.discard_dead_letter(letters[0].id)
            assert [d.id async for d in vantage.iter_dead_letters()] == [d.id for d in letters[1:]]
            with pytest.raises(NotFound, match="no dead letter"):
                await vantage.discard_dead_letter(letters[0].id)

    asyncio.run(scenario())
