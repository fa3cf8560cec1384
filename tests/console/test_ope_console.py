"""Off-policy evaluation on the console's Experiments screen, in headless Chromium against the
real API: a candidate registered from the screen, listed, estimated on the lists serving
shadowed for it and deleted; overrides that make no valid surface refused with the API's
message.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.console.conftest import Console, seed

pytestmark = [pytest.mark.integration, pytest.mark.browser]
DIVERSE = {"policy": {"mmr_lambda": 0.5}}
ROW = '#ope-candidates-table tr[data-candidate="{}"]'


def _register(page: Console, name: str, overrides: str, share: str = "1") -> None:
    from selenium.webdriver.support.ui import Select

    page.fill("#ope-name", name)
    Select(page.el("#ope-surface")).select_by_value("homepage")
    page.fill("#ope-share", share)
    page.fill("#ope-overrides", overrides)
    page.el("#ope-register").click()


def _candidates(page: Console, auth: dict[str, str]) -> list[dict[str, Any]]:
    res = httpx.get(f"{page.base}/v1/admin/ope/candidates", headers=auth)
    got: list[dict[str, Any]] = res.raise_for_status().json()["candidates"]
    return got


def _serve(page: Console, auth: dict[str, str], user: str) -> tuple[str, str]:
    """A homepage list for `user`, through the API: (its recommendation id, first item)."""
    res = httpx.get(
        f"{page.base}/v1/recommendations", params={"user_id": user, "limit": 4}, headers=auth
    )
    rec = res.raise_for_status().json()
    return rec["recommendation_id"], rec["items"][0]["item_id"]


def _logged(stores: Any, rid: str, first: str, shadow: str | None = None) -> bool:
    """Whether list `rid` is logged (its clicks attributable), and shadowed by `shadow`."""
    key = stores.keys.rec_info(rid)
    shadowed = shadow is None or stores.redis.hexists(key, f"~shadow:{shadow}")
    return bool(stores.redis.hexists(key, first)) and bool(shadowed)


def _shadowed_traffic(page: Console, stores: Any, auth: dict[str, str]) -> tuple[str, str, str]:
    """Lists for new users until one is logged with the candidate's shadow list beside it
    (serving reads the candidates within a second): (its id, its user, its first item)."""
    served: list[tuple[str, str, str]] = []

    def serve(_: Any) -> tuple[str, str, str] | None:
        user = f"ope-{len(served)}"
        served.append((*_serve(page, auth, user), user))
        for rid, first, who in served:
            if _logged(stores, rid, first, "diverse"):
                return rid, who, first
        return None

    found: tuple[str, str, str] = page.wait(serve, msg="a list logged with its shadow list")
    return found


def _estimates_shown(page: Console) -> None:
    """The answer's estimator table: ips, snips and dr, each with its interval, snips first."""
    rows = page.all("#ope-estimates tbody tr[data-estimator]")
    assert [r.get_attribute("data-estimator") for r in rows] == ["ips", "snips", "dr"]
    chosen = page.el('#ope-estimates tr[data-chosen="true"]')
    assert chosen.get_attribute("data-estimator") == "snips" and "read first" in chosen.text
    assert len(page.all("#ope-estimates svg.interval circle")) == 3


def test_a_candidate_is_registered_estimated_and_deleted_from_the_experiments_screen(
    console: Console, stores: Any, worker: Any
) -> None:
    from selenium.webdriver.support.ui import Select

    seed(stores, worker)
    auth = {"Authorization": f"Bearer {console.sign_in()}"}
    console.tab("experiments")
    assert "no candidate registered" in console.text("#ope-candidates-table")

    _register(console, "diverse", json.dumps(DIVERSE))
    row = ROW.format("diverse")
    text = console.text(row)
    assert "homepage" in text and "100%" in text and '{"policy":{"mmr_lambda":0.5}}' in text
    assert "candidate diverse registered" in console.text("#ope-message")
    got = [
        (c["name"], c["surface"], c["share"], c["overrides"]) for c in _candidates(console, auth)
    ]
    assert got == [("diverse", "homepage", 1.0, DIVERSE)]

    # Overrides that make no valid surface: the API's 422, said on the screen, nothing kept.
    _register(console, "too-far", '{"policy": {"mmr_lambda": 5}}')
    refused = "overrides do not make a valid surface"
    console.wait(lambda d: refused in console.el("#ope-cand-error").text, msg=refused)
    assert console.text("#ope-cand-error").startswith("422 invalid_request")
    assert not console.all(ROW.format("too-far"))
    assert [c["name"] for c in _candidates(console, auth)] == ["diverse"]

    # Traffic the candidate shadows, and a click on one of its lists, applied by the worker.
    rid, user, item = _shadowed_traffic(console, stores, auth)
    click = {"user_id": user, "item_id": item, "type": "click", "recommendation_id": rid}
    res = httpx.post(f"{console.base}/v1/interactions", json=click, headers=auth)
    assert res.status_code == 202
    worker.drain()

    # Estimated from the screen: the candidate's shadow lists, an estimate or a refusal.
    picked = Select(console.el("#ope-est-candidate")).first_selected_option
    assert picked.get_attribute("value") == "diverse"
    assert console.el("#ope-est-hours").get_attribute("value") == "24"
    console.el("#ope-estimate").click()
    answer = console.el("#ope-answer")
    assert answer.get_attribute("data-method") == "shadow"
    direct = httpx.post(
        f"{console.base}/v1/admin/ope",
        json={"surface": "homepage", "candidate": "diverse", "hours": 24},
        headers=auth,
        timeout=60,
    ).json()
    assert int(answer.get_attribute("data-lists")) == direct["lists"] >= 1
    assert answer.get_attribute("data-chosen") == direct["chosen"] == "snips"
    if answer.get_attribute("data-refused") == "true":  # few lists: too small a sample
        assert direct["refused"] and direct["refused"] in console.text("#ope-refused")
        assert not console.all("#ope-estimates")
    else:
        assert direct["refused"] is None
        _estimates_shown(console)
    stat = '#ope-stats [data-stat="lists used"] dd'
    assert console.text(stat) == str(direct["lists"])

    # The surface as configured now, replayed on every logged list (a dozen more of them):
    # the replay matches what was served, and the sample is large enough for a number.
    more = [_serve(console, auth, f"more-{n}") for n in range(12)]
    console.wait(lambda d: all(_logged(stores, *m) for m in more), msg="lists logged")
    assert not console.el("#ope-est-overrides").is_displayed()  # a candidate is picked
    Select(console.el("#ope-est-candidate")).select_by_value("")
    console.fill("#ope-est-overrides", "{}")
    console.el("#ope-estimate").click()

    def replayed(_: Any) -> bool:
        return bool(console.el("#ope-answer").get_attribute("data-method") == "replay")

    console.wait(replayed, timeout=60, msg="replayed")
    assert console.el("#ope-answer").get_attribute("data-refused") == "false"
    _estimates_shown(console)
    assert int(console.el("#ope-answer").get_attribute("data-lists")) >= len(more)
    assert not console.all("#ope-refused")

    # Deleted from the screen (confirmed): gone from the table, the API and the estimate form.
    console.el('[data-ope-delete="diverse"]').click()
    assert "diverse" in console.d.switch_to.alert.text
    console.d.switch_to.alert.accept()
    console.wait(lambda d: not console.all(row), msg="candidate deleted")
    assert "candidate diverse deleted" in console.text("#ope-message")
    assert _candidates(console, auth) == []
    options = console.all("#ope-est-candidate option")
    assert [o.get_attribute("value") for o in options] == [""]  # overrides only
    assert console.errors() == []
