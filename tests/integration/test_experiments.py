"""GET /v1/admin/experiments over real traffic: each arm's counts are what it served, and the
decision follows the always-valid interval and the guardrails."""

from __future__ import annotations

import time
from typing import Any

from core.served_list import hour_of
from core.settings import Settings
from core.surfaces import SurfaceConfig
from tests.integration.test_surfaces import app_client, recs, setup

URL = "/v1/admin/experiments"


def _with_variant(settings: Settings) -> Settings:
    raw = settings.surfaces["homepage"].model_dump()
    raw["variants"] = {"calm": {"share": 0.5, "overrides": {"policy": {"mmr_lambda": 1.0}}}}
    home = SurfaceConfig.model_validate(raw)
    return settings.model_copy(update={"surfaces": {**settings.surfaces, "homepage": home}})


def _wait(fn: Any, timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (got := fn()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return got


def test_arms_count_what_they_served_and_the_decision_follows_the_evidence(
    settings: Settings, worker: Any
) -> None:
    with app_client(_with_variant(settings)) as c:
        setup(c, worker)
        served: dict[str, list[dict[str, Any]]] = {"default": [], "calm": []}
        for n in range(30):
            body = recs(c, user_id=f"exp-{n}", limit=5)
            served[body["variant"]].append(body)
        assert served["default"] and served["calm"]
        # One click on the first item of every `calm` list.
        clicks = [
            {
                "user_id": b["user_id"],
                "item_id": b["items"][0]["item_id"],
                "type": "click",
                "recommendation_id": b["recommendation_id"],
            }
            for b in served["calm"]
            if b["items"]
        ]
        state = c.app.state.vantage  # type: ignore[attr-defined]
        _wait(
            lambda: all(
                state.redis.exists(state.keys.rec_info(b["recommendation_id"]))
                for b in served["calm"]
            )
        )
        assert c.post("/v1/interactions", json=clicks).status_code == 202
        worker.drain()

        def arms() -> dict[str, Any]:
            got = c.get(URL).json()["items"]
            return {a["variant"]: a for a in got[0]["arms"]} if got else {}

        expected = {v: sum(len(b["items"]) for b in bodies) for v, bodies in served.items()}
        _wait(lambda: {v: a["impressions"] for v, a in arms().items()} == expected)
        got = c.get(URL).json()["items"]
        assert [e["surface"] for e in got] == ["homepage"]  # only surfaces with variants
        exp = got[0]
        by_arm = {a["variant"]: a for a in exp["arms"]}
        assert [a["variant"] for a in exp["arms"]] == ["default", "calm"]
        assert by_arm["calm"]["share"] == 0.5 and by_arm["default"]["share"] == 0.5
        for v, bodies in served.items():
            arm = by_arm[v]
            assert arm["impressions"] == expected[v] and arm["lists"] == len(bodies)
            items = {it["item_id"] for b in bodies for it in b["items"]}
            assert abs(arm["distinct_items"] - len(items)) <= max(1, len(items) // 50)
            assert arm["p95_ms"] is not None and arm["degraded_share"] == 0.0
            # The sources filter maturity themselves: the safety net had nothing to catch.
            assert arm["safety_per_list"] == 0.0, arm
        assert by_arm["calm"]["clicks"] == len(clicks) and by_arm["default"]["clicks"] == 0
        [cmp] = exp["comparisons"]
        assert cmp["variant"] == "calm" and cmp["ctr_diff"] > 0
        assert cmp["ctr_diff_low"] < cmp["ctr_diff"] < cmp["ctr_diff_high"]
        assert cmp["decision"] == "continue" and cmp["reason"].startswith("collecting")
        assert {g["name"]: g["breached"] for g in cmp["guardrails"]} == {
            "p95_latency_ms": None,  # too few lists to judge
            "degraded_share": None,
            "coverage": None,
            "safety_filter_hits": None,
        }

        # Enough traffic (counted into this hour as the impression log and the worker would):
        # the variant's higher CTR is shown, and no guardrail breaks.
        hour = hour_of(time.time())
        key = state.keys.surface_stats_hour(0, hour)
        for variant, imps, clicks_n in (("default", 40_000, 2_000), ("calm", 40_000, 2_500)):
            state.redis.hincrby(key, f"imp|homepage|*|{variant}", imps)
            state.redis.hincrby(key, f"click|homepage|*|{variant}", clicks_n)
            state.redis.hincrby(key, f"list|homepage|*|{variant}", 4_000)
            state.redis.hincrby(key, f"lat|homepage|50|{variant}", 4_000)
        state.redis.expire(key, 3600)
        [cmp] = c.get(URL, params={"surface": "homepage", "hours": 2}).json()["items"][0][
            "comparisons"
        ]
        assert cmp["decision"] == "ship" and cmp["ctr_diff_low"] > 0, cmp
        assert {g["name"]: g["breached"] for g in cmp["guardrails"]}["p95_latency_ms"] is False
        # Then the variant turns slow: the latency guardrail stops it.
        state.redis.hincrby(key, "lat|homepage|500|calm", 4_000)
        [cmp] = c.get(URL).json()["items"][0]["comparisons"]
        assert cmp["decision"] == "stop" and "p95_latency_ms" in cmp["reason"], cmp

        assert c.get(URL, params={"surface": "related"}).json() == {"items": []}
        assert c.get(URL, params={"hours": 0}).status_code == 422
