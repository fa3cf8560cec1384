""" "Why not this item?" against the pipeline's own decisions: for every item of a test
catalogue, the stage why-not names is where a traced run of the same request lost it."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from core.settings import Settings
from serving import policy
from serving.request import RecRequest
from serving.stages import policy_stage, rank_stage, retrieve
from tests.integration.test_surfaces import app_client, catalogue, setup, surfaces_with

URL = "/v1/recommendations/why-not"
LIMIT = 6


def _traced(state: Any, req: RecRequest) -> dict[str, Any]:
    """The pipeline's stages for `req`, as item-id lists (exploration is off: deterministic)."""
    ctx = state.users.context(req.user_id, recent_n=state.settings.serving.history_exclude)
    _, cfg = state.settings.surfaces[req.surface].variant(req.user_id, req.surface)
    got = retrieve(state, req, ctx, cfg)
    ranked = rank_stage(state, req, ctx, cfg, got.candidates, [], {}, time.monotonic())
    window = ranked[: policy.window_size(cfg.policy, req.limit)]
    final = policy_stage(state, req, ctx, cfg, got, ranked, "1", state.rules.snapshot())
    return {
        "fused": {c.item_id for c in got.fused},
        "kept": {c.item_id for c in got.candidates},
        "window": {c.item_id for c in window},
        "final": [c.item_id for c in final],
    }


def _why(c: TestClient, user: str, item: str, **params: Any) -> dict[str, Any]:
    res = c.get(URL, params={"user_id": user, "item_id": item, "limit": LIMIT, **params})
    assert res.status_code == 200, res.text
    return res.json()


def test_every_item_is_placed_at_the_stage_that_lost_it(settings: Settings, worker: Any) -> None:
    s = surfaces_with(
        settings, "homepage", policy={"exploration_share": 0.0, "category_cap": 2}, cache_ttl_s=0
    )
    with app_client(s) as c:
        setup(c, worker)
        state = c.app.state.vantage  # type: ignore[attr-defined]
        for user in ("kid", "fan"):
            served = c.get("/v1/recommendations", params={"user_id": user, "limit": LIMIT}).json()
            traced = _traced(state, RecRequest(user_id=user, surface="homepage", limit=LIMIT))
            assert traced["final"] == [i["item_id"] for i in served["items"]]
            stages: dict[str, str] = {}
            for item in [it["item_id"] for it in catalogue()] + ["no-such-item"]:
                why = _why(c, user, item)
                assert why["items"] == traced["final"]  # the same run as the pipeline's
                stage = stages[item] = why["stage"]
                if item in traced["final"]:
                    assert stage == "served"
                    assert why["numbers"]["position"] == traced["final"].index(item) + 1
                elif stage in ("unknown_item", "hard_filter", "not_retrieved", "request_filter"):
                    assert item not in traced["kept"], (item, why)
                    if stage == "not_retrieved":
                        assert item not in traced["fused"], (item, why)
                elif stage == "below_rank_depth":
                    assert item in traced["fused"] and item not in traced["kept"], why
                elif stage == "below_policy_window":
                    assert item in traced["kept"] and item not in traced["window"], why
                else:  # lost by the policy rules
                    assert item in traced["window"] and item not in traced["final"], why
                    if stage == "category_cap":
                        cat = next(i["categories"][0] for i in catalogue() if i["item_id"] == item)
                        same = [i for i in traced["final"] if i.startswith(f"{cat}-")]
                        assert len(same) >= 2, (item, traced["final"])
            assert stages["no-such-item"] == "unknown_item"
            assert stages["space-0"] == "hard_filter"  # liked already: seen
            if user == "kid":
                assert stages["adult-space"] == "hard_filter"
                why = _why(c, "kid", "adult-space")
                assert "maturity 18 is above this user's ceiling" in why["detail"]
            assert "category_cap" in stages.values(), stages  # cap 2 of 4 topics, 6 items


def test_a_bury_rule_and_a_request_filter_are_named(settings: Settings, worker: Any) -> None:
    s = surfaces_with(settings, "homepage", policy={"exploration_share": 0.0}, cache_ttl_s=0)
    with app_client(s) as c:
        setup(c, worker)
        first = _why(c, "fan", "space-2")
        assert first["stage"] == "served", first
        rule = {"action": "bury", "item_id": "space-2", "weight": 5.0}
        assert c.put("/v1/admin/rules/hide-space-2", json=rule).status_code == 201
        time.sleep(1.2)  # rules reach serving within a second
        buried = _why(c, "fan", "space-2")
        assert buried["stage"] == "buried" and "space-2" not in buried["items"], buried
        other = _why(c, "fan", "garden-3", category="cooking")
        assert other["stage"] == "request_filter" and "'garden'" in other["detail"]
        expr = 'not category = "garden"'
        filtered = _why(c, "fan", "garden-3", filter=expr)
        assert filtered["stage"] == "request_filter" and expr in filtered["detail"], filtered
        assert all(not i.startswith("garden-") for i in filtered["items"])
        assert c.get(URL, params={"user_id": "fan"}).status_code == 422  # item_id required
