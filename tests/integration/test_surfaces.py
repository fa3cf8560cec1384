"""Surfaces and the policy layer through the HTTP API, against real Milvus and Redis.

One test per rule of the issue: safety on every surface and the cache, pins, caps, exploration
with propensities, dislikes, cold start by preferences, experiments, debug timings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from core.settings import Settings
from tests.conftest import authed

TOPICS = {
    "space": "rockets astronauts planets galaxies orbit telescope nebula",
    "cooking": "recipes kitchen bread pasta baking oven flavours",
    "garden": "plants flowers soil seeds pruning roses vegetables",
    "football": "goals match league players stadium striker penalty",
}
NOW = int(time.time())


def catalogue() -> list[dict[str, Any]]:
    items = []
    for topic, words in TOPICS.items():
        for k in range(8):
            items.append(
                {
                    "item_id": f"{topic}-{k}",
                    "title": f"{topic.title()} story {k}",
                    "description": f"{words} part {k}",
                    "categories": [topic],
                    "creator_id": f"{topic}-maker-{k % 2}",
                    "published_at": NOW - (k + 1) * 86_400 * 40,
                    "language": "en",
                }
            )
    items.append(
        {
            "item_id": "adult-space",
            "title": "Space horror after dark",
            "description": f"{TOPICS['space']} gore",
            "categories": ["space"],
            "maturity": 18,
        }
    )
    items.append(
        {
            "item_id": "space-de",
            "title": "Raumfahrt und Sterne",
            "description": TOPICS["space"],
            "categories": ["space"],
            "language": "de",
        }
    )
    return items


def surfaces_with(settings: Settings, surface: str, **update: Any) -> Settings:
    """Settings whose `surface` has these fields (policy given as a dict of its fields)."""
    cfg = settings.surfaces[surface]
    if "policy" in update:
        update["policy"] = cfg.policy.model_copy(update=update["policy"])
    new = cfg.model_copy(update=update)
    return settings.model_copy(update={"surfaces": {**settings.surfaces, surface: new}})


@contextmanager
def app_client(settings: Settings) -> Iterator[TestClient]:
    with authed(create_app(settings), settings) as c:
        yield c


def setup(client: TestClient, worker: Any) -> None:
    assert client.post("/v1/items/batch", json={"items": catalogue()}).status_code == 202
    worker.drain()
    users = {
        "kid": {"birth_year": time.gmtime().tm_year - 10, "language": "en"},
        "fan": {"birth_year": 1980},
        "cook": {"birth_year": 1980},
    }
    for uid, body in users.items():
        assert client.put(f"/v1/users/{uid}", json=body).status_code in (200, 202)
    events = [
        {"user_id": u, "item_id": i, "type": "like"}
        for u, i in [
            ("kid", "space-0"),
            ("fan", "space-0"),
            ("fan", "space-1"),
            ("cook", "cooking-0"),
            ("cook", "cooking-1"),
        ]
    ]
    # The adult item is the most popular of all: fallbacks and popular sources must skip it.
    events += [{"user_id": f"p{n}", "item_id": "adult-space", "type": "purchase"} for n in range(5)]
    assert client.post("/v1/interactions", json=events).status_code == 202
    worker.drain()


def recs(client: TestClient, **params: Any) -> dict[str, Any]:
    r = client.get("/v1/recommendations", params={"limit": 10, **params})
    assert r.status_code == 200, r.text
    return r.json()


def ids(body: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in body["items"]]


ALL_SURFACES = [
    {"surface": "homepage"},
    {"surface": "trending"},
    {"surface": "related", "item_id": "space-2"},
    {"surface": "up_next", "item_id": "space-2"},
    {"surface": "contextual", "item_id": "space-2"},
]


def test_unknown_surface_lists_the_valid_ones(client: TestClient) -> None:
    r = client.get("/v1/recommendations", params={"user_id": "u", "surface": "nope"})
    assert r.status_code == 422
    msg = r.json()["error"]["message"]
    for name in ("homepage", "up_next", "related", "contextual", "trending"):
        assert name in msg
    r = client.get("/v1/recommendations", params={"user_id": "u", "surface": "up_next"})
    assert r.status_code == 422 and "item_id is required" in r.json()["error"]["message"]


def test_a_minor_never_gets_adult_items_on_any_surface_or_from_the_cache(
    client: TestClient, worker: Any
) -> None:
    setup(client, worker)
    for params in ALL_SURFACES:
        for _ in range(2):  # the second answer may come from the cache
            body = recs(client, user_id="kid", **params)
            assert "adult-space" not in ids(body), (params, body)
            assert "space-de" not in ids(body), "the kid reads English only"
    # An adult who asked for nothing in particular does get it somewhere.
    assert "adult-space" in ids(recs(client, user_id="fan", surface="related", item_id="space-2"))


def test_a_cached_list_drops_an_item_made_too_mature_since(client: TestClient, worker: Any) -> None:
    setup(client, worker)
    first = recs(client, user_id="kid", surface="homepage")
    victim = ids(first)[0]
    # The item is rewritten for adults after the list was cached: the cached list is
    # re-checked against the item's current metadata (through the process item cache, whose
    # entry predates the write), not served as it was.
    item = next(i for i in catalogue() if i["item_id"] == victim)
    body = {k: v for k, v in item.items() if k != "item_id"} | {"maturity": 18}
    assert client.put(f"/v1/items/{victim}", json=body).status_code == 202
    worker.drain()
    again = recs(client, user_id="kid", surface="homepage")
    assert again["cached"] is True, again
    assert victim not in ids(again) and len(ids(again)) == len(ids(first)) - 1
    assert client.get(f"/v1/items/{victim}").json()["maturity"] == 18


def test_a_context_item_the_user_may_not_see_is_not_found_and_never_named(
    client: TestClient, worker: Any
) -> None:
    setup(client, worker)
    jp = {**catalogue()[0], "item_id": "space-jp", "title": "Only in Japan", "regions": ["JP"]}
    assert client.post("/v1/items/batch", json={"items": [jp]}).status_code == 202
    assert client.put("/v1/users/traveller", json={"region": "DE"}).status_code == 200
    worker.drain()
    unknown = client.get(
        "/v1/recommendations", params={"user_id": "kid", "surface": "related", "item_id": "nope"}
    )
    assert unknown.status_code == 404
    cases = [("kid", "adult-space", "Space horror after dark"), ("traveller", "space-jp", "Japan")]
    for user, item, title in cases:
        for surface in ("related", "up_next", "contextual"):
            for debug in (False, True):
                r = client.get(
                    "/v1/recommendations",
                    params={"user_id": user, "surface": surface, "item_id": item, "debug": debug},
                )
                # Answered as an unknown item is: its existence is not revealed either.
                assert r.status_code == 404, (user, surface, r.text)
                assert r.json()["error"]["code"] == unknown.json()["error"]["code"]
                assert title not in r.text
    # An adult may see the adult item's page: its title explains the related list.
    body = recs(client, user_id="fan", surface="related", item_id="adult-space")
    assert any("Space horror after dark" in r for i in body["items"] for r in i["reasons"])


def test_every_surface_explains_itself(client: TestClient, worker: Any) -> None:
    setup(client, worker)
    for params in ALL_SURFACES:
        body = recs(client, user_id="fan", **params)
        assert body["items"], params
        assert body["variant"] == "default" and body["recommendation_id"]
        for pos, item in enumerate(body["items"], 1):
            assert item["position"] == pos and item["sources"] and item["reasons"]
            assert item["propensity"] is not None
    up_next = recs(client, user_id="fan", surface="up_next", item_id="space-2")
    assert "space-2" not in ids(up_next) and "space" in ids(up_next)[0]
    assert any(r.startswith("similar to Space story 2") for r in up_next["items"][0]["reasons"])
    home = recs(client, user_id="fan")
    assert any(r.startswith("because you watched Space story") for r in home["items"][0]["reasons"])


def test_debug_returns_stage_timings_and_source_yields(client: TestClient, worker: Any) -> None:
    setup(client, worker)
    body = recs(client, user_id="fan", debug="true")
    dbg = body["debug"]
    for stage in ("context_ms", "candidates_ms", "scoring_ms", "ranking_ms", "policy_ms"):
        assert dbg["stages"][stage] >= 0
    assert dbg["stages"]["total_ms"] >= dbg["stages"]["candidates_ms"]
    names = [s["name"] for s in dbg["sources"]]
    assert names == ["personal", "preferences", "popular", "trending"]
    assert dbg["generated"] >= dbg["after_hard_filters"] >= len(body["items"])
    assert (
        "debug" not in recs(client, user_id="fan") or recs(client, user_id="fan")["debug"] is None
    )


def test_pinned_item_sits_at_its_position_and_is_still_safe(
    client: TestClient, worker: Any
) -> None:
    setup(client, worker)
    pin = {"action": "pin", "item_id": "garden-3", "position": 2, "surfaces": ["homepage"]}
    assert client.put("/v1/admin/rules/pin-garden", json=pin).status_code == 201
    bad = {"action": "pin", "item_id": "adult-space", "position": 1}
    assert client.put("/v1/admin/rules/pin-adult", json=bad).status_code == 201
    bury = {"action": "bury", "category": "space", "weight": 5}
    assert client.put("/v1/admin/rules/bury-space", json=bury).status_code == 201
    time.sleep(1.1)  # rule snapshots are re-read at most once per second
    body = recs(client, user_id="kid")
    got = ids(body)
    assert got[1] == "garden-3" and "featured" in body["items"][1]["reasons"]
    assert "adult-space" not in got  # a pin does not bypass safety
    assert (
        not [i for i in got if i.startswith("space-")][:1]
        or got.index(next(i for i in got if i.startswith("space-"))) > 2
    ), got  # buried below the others
    adult = recs(client, user_id="fan")
    assert ids(adult)[0] == "adult-space"
    # Other surfaces are not pinned; deleting the rule unpins at once (new rules version).
    assert ids(recs(client, user_id="kid", surface="trending"))[1:2] != ["garden-3"]
    assert client.delete("/v1/admin/rules/pin-garden").status_code == 204
    time.sleep(1.1)
    assert ids(recs(client, user_id="kid"))[1:2] != ["garden-3"]


def test_category_caps_hold_except_for_the_users_own_share(settings: Settings, worker: Any) -> None:
    capped = surfaces_with(
        settings,
        "homepage",
        policy={"category_cap": 2, "creator_cap": 1, "new_item_cap": None},
        budget_ms=60_000,
    )
    # This test is about caps: a loaded machine must not cut a source short (a Milvus call past
    # its budget fails over to fewer candidates; CI once served 2 space items so).
    serving = capped.serving.model_copy(update={"milvus_budget_ms": 60_000})
    capped = capped.model_copy(update={"serving": serving})
    with app_client(capped) as c:
        setup(c, worker)
        got = recs(c, user_id="fan", limit=6, debug="true")
        category = {it["item_id"]: it["categories"][0] for it in catalogue()}
        # By category, not id prefix: `adult-space` and `space-de` are space items too.
        cats = [category[i["item_id"]] for i in got["items"]]
        assert len(cats) == 6 and got["debug"]["caps_relaxed"] == [], got["debug"]
        # Every category but the fan's own (all of their history is space) keeps the cap;
        # space may take its share of the fan's history (calibration), here beyond 2.
        assert all(cats.count(x) <= 2 for x in set(cats) - {"space"}), cats
        assert cats.count("space") > 2, (cats, got["debug"])


def test_explored_items_carry_their_propensity(settings: Settings, worker: Any) -> None:
    explore = surfaces_with(
        settings,
        "homepage",
        policy={"exploration_share": 0.5, "exploration_start": 2, "new_item_cap": None},
        cache_ttl_s=0,
    )
    with app_client(explore) as c:
        setup(c, worker)
        explored = []
        for _ in range(5):
            items = recs(c, user_id="fan", limit=8)["items"]
            assert items[0]["explored"] is False and items[0]["propensity"] == 1.0
            explored += [i for i in items if i["explored"]]
        assert explored, "half the slots from position 2 on should explore"
        assert all(0 < i["propensity"] < 0.5 for i in explored)
        assert all("picked to explore something new for you" in i["reasons"] for i in explored)


def test_a_disliked_item_never_comes_back(settings: Settings, worker: Any) -> None:
    # Even where seen items may return (trending: only the last 7 days count as seen).
    short = surfaces_with(settings, "trending", policy={"seen_window_days": 0.0001})
    with app_client(short) as c:
        setup(c, worker)
        assert "space-2" in ids(recs(c, user_id="fan", surface="related", item_id="space-3"))
        dislike = {"user_id": "fan", "item_id": "space-2", "type": "dislike"}
        assert c.post("/v1/interactions", json=dislike).status_code == 202
        worker.drain()
        time.sleep(0.5)  # past the trending surface's seen window
        for params in ALL_SURFACES:
            if params.get("item_id") == "space-2":
                params = {**params, "item_id": "space-3"}
            assert "space-2" not in ids(recs(c, user_id="fan", **params)), params


def test_new_user_preferences_then_personal(client: TestClient, worker: Any) -> None:
    setup(client, worker)
    prefs = {"preferences": {"categories": ["garden"]}, "birth_year": 1990}
    assert client.put("/v1/users/newbie", json=prefs).status_code in (200, 202)
    worker.drain()
    first = recs(client, user_id="newbie", limit=5)["items"]
    topics = [i["item_id"].split("-")[0] for i in first]
    plain = [i.split("-")[0] for i in ids(recs(client, user_id="nobody", limit=5))]
    # Steered, not replaced: the picked topic leads, popular items still mix in.
    assert topics[:2] == ["garden"] * 2 and topics.count("garden") > plain.count("garden"), first
    assert "preferences" in first[0]["sources"]
    assert "matches the topics you picked" in first[0]["reasons"]
    # Events arrive: the user's own history takes over.
    likes = [{"user_id": "newbie", "item_id": f"football-{k}", "type": "like"} for k in range(4)]
    assert client.post("/v1/interactions", json=likes).status_code == 202
    worker.drain()
    later = recs(client, user_id="newbie", limit=3)["items"]
    assert later[0]["item_id"].startswith("football-"), later


def test_experiment_variants_are_sticky_and_counted(settings: Settings, worker: Any) -> None:
    raw = settings.surfaces["homepage"].model_dump()
    raw["variants"] = {"no_explore": {"share": 0.5, "overrides": {"policy": {"mmr_lambda": 1.0}}}}
    from core.surfaces import SurfaceConfig

    home = SurfaceConfig.model_validate(raw)
    exp = settings.model_copy(update={"surfaces": {**settings.surfaces, "homepage": home}})
    with app_client(exp) as c:
        setup(c, worker)
        seen = {}
        for n in range(40):
            body = recs(c, user_id=f"visitor-{n}")
            seen[f"visitor-{n}"] = body["variant"]
            assert recs(c, user_id=f"visitor-{n}")["variant"] == body["variant"]
        assert set(seen.values()) == {"default", "no_explore"}
        assert 8 <= list(seen.values()).count("no_explore") <= 32

        def variants() -> set[str]:
            rows = c.get("/v1/admin/metrics/surfaces", params={"surface": "homepage"}).json()
            return {r["variant"] for r in rows["rows"] if r["impressions"] > 0}

        deadline = time.monotonic() + 5
        while variants() != {"default", "no_explore"} and time.monotonic() < deadline:
            time.sleep(0.1)
        assert variants() == {"default", "no_explore"}


@pytest.mark.parametrize("bad", [{"share": 0.7}, {"share": 0.5, "overrides": {"ranker": "x/y"}}])
def test_bad_variants_fail_at_start_up(settings: Settings, bad: dict[str, Any]) -> None:
    from core.surfaces import SurfaceConfig

    raw = settings.surfaces["homepage"].model_dump()
    raw["variants"] = {"a": {"share": 0.5}, "b": bad}
    with pytest.raises(ValueError, match=r"variant|shares"):
        SurfaceConfig.model_validate(raw)
