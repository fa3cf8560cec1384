"""The operator console in headless Chromium against the real API: sign in, the playground,
"why not this item?" asked from it, a re-index followed to 100%, a pin placed through the rules
screen, a dead letter replayed, a key created and revoked, an older re-ranker made current, a
ranker canary started and stopped, the ranker's feature drift, the catalogue searched by
meaning, the hourly analytics chart and an experiment's arms.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from core import events as ev
from core.keys import RECS_SHARDS
from core.settings import Settings
from indexing.jobrunner import JobRunner
from tests.console.conftest import Console, open_console, seed
from tests.integration.conftest import CATALOGUE
from tests.integration.test_admin import _save_ranker
from tests.integration.test_canary import _ranker
from tests.integration.test_experiments import _with_variant

pytestmark = [pytest.mark.integration, pytest.mark.browser]
SCREENS = (
    "playground",
    "catalogue",
    "jobs",
    "models",
    "rules",
    "analytics",
    "experiments",
    "queue",
    "keys",
)
# What each screen shows once its API calls answered.
READY = {
    "catalogue": "#cat-id",
    "jobs": "#job-history-table",
    "models": "#models-cf-table",
    "rules": "#rules-table",
    "analytics": "#an-hourly svg",
    "experiments": "#exp-none",  # no surface has variants in the test settings
    "queue": "#dl-table",
    "keys": "#keys-table",
}


def _tabs(page: Console) -> list[str]:
    return [t.get_attribute("id") for t in page.all("#tabs a")]


def test_sign_in_run_the_playground_and_scopes_decide_the_screens(
    console: Console, stores: Any, worker: Any
) -> None:
    seed(stores, worker)
    key = console.sign_in(name="ops desk")
    assert _tabs(console) == [f"tab-{s}" for s in SCREENS]
    assert console.text("#session-key") == "ops desk · scopes: admin"
    # The key lives in this tab's session storage only.
    assert console.d.execute_script("return sessionStorage.getItem('vantage.console.key')") == key
    assert console.d.execute_script("return localStorage.length") == 0

    # The user field suggests the users the API knows (admin keys: GET /v1/admin/users).
    console.wait(
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('#pg-users option')].map(o => o.value)"
        ).count("reader"),
        msg="known users suggested",
    )
    rows = console.run_playground("reader", "homepage")
    assert len(rows) >= 5 and [p for p, _, _ in rows] == list(range(1, len(rows) + 1))
    assert "space-1" not in {i for _, i, _ in rows}  # the reader's own like is not recommended
    titles = {i: t for _, i, t in rows}
    assert all(titles[i] == CATALOGUE[i]["title"] for i in titles if i in CATALOGUE)
    assert console.el("#pg-a-timings svg")  # per-stage timings (debug)
    assert "total_ms" in console.text("#pg-a-timings")

    # Side by side: a second surface in the other column.
    console.el("#pg-compare").click()
    from selenium.webdriver.support.ui import Select

    Select(console.el("#pg-b-surface")).select_by_value("related")
    console.fill("#pg-b-item", "space-2")
    console.el("#pg-run").click()
    console.wait(lambda d: console.playground_rows("b"), msg="related column")
    related = console.playground_rows("b")
    assert "space-2" not in {i for _, i, _ in related}
    # Every screen of an admin key opens and shows what it loaded.
    for screen, shown in READY.items():
        console.tab(screen)
        console.el(shown)
    assert console.errors() == []

    # A recommend key: the playground only, with titles (the list carries them: details=true),
    # though the key cannot read items.
    console.el("#signout").click()
    console.el("#signin-key")
    assert console.d.execute_script("return sessionStorage.getItem('vantage.console.key')") is None
    console.sign_in(("recommend",), name="web app")
    assert _tabs(console) == ["tab-playground"]
    assert console.text("#session-key") == "web app · scopes: recommend"
    rows = console.run_playground("reader", "homepage")
    assert rows and all(t == CATALOGUE[i]["title"] for _, i, t in rows if i in CATALOGUE)
    assert "needs API: titles" not in console.text("#screen-playground")
    assert not console.all("#pg-a-whynot-item")  # why-not reads any item: admin keys only

    # A key the API does not know: the sign-in form stays, with the API's message.
    console.el("#signout").click()
    console.fill("#signin-key", "vtg_not-a-key")
    console.el("#signin-submit").click()
    assert "invalid or revoked API key" in console.text("#signin-error")


def test_the_playground_says_why_an_item_is_or_is_not_in_the_list(
    console: Console, stores: Any, worker: Any
) -> None:
    seed(stores, worker)
    key = console.sign_in()
    rows = console.run_playground("reader", "homepage")
    shown = [i for _, i, _ in rows]
    box = "#pg-a-whynot-result"

    def ask(item: str) -> dict[str, Any]:
        """Ask from the playground; the answer as shown, checked against the API's own."""
        console.fill("#pg-a-whynot-item", item)
        console.el("#pg-a-whynot-go").click()
        console.wait(lambda d: console.el(box).get_attribute("data-item-id") == item, msg=item)
        rid = console.el(box).get_attribute("data-recommendation-id")
        assert rid and rid in console.text("#pg-a-meta")  # the list shown, replayed
        params = {"user_id": "reader", "surface": "homepage", "limit": 10, "item_id": item}
        direct = httpx.get(
            f"{console.base}/v1/recommendations/why-not",
            params={**params, "recommendation_id": rid},
            headers={"Authorization": f"Bearer {key}"},
        ).json()
        assert console.el(box).get_attribute("data-stage") == direct["stage"]
        assert console.el(box).get_attribute("data-served") == str(direct["served"]).lower()
        assert direct["detail"] in console.text(box) and direct["items"] == shown
        numbers = {
            r.get_attribute("data-key"): r.find_element("css selector", "td.num").text
            for r in console.all("#pg-a-whynot-numbers tbody tr[data-key]")
        }
        assert set(numbers) == set(direct["numbers"])
        return dict(direct)

    position, item, _ = rows[2]
    served = ask(item)
    assert served["stage"] == "served" and served["numbers"] == {"position": position}
    assert console.el(box).get_attribute("data-position") == str(position)
    assert f"served at position {position}" in console.text(box)
    assert ask("hidden-1")["stage"] == "hard_filter" and "hidden" in console.text(box)
    assert ask("no-such-item")["stage"] == "unknown_item" and "not served" in console.text(box)
    assert console.errors() == []


def test_an_item_is_opened_edited_hidden_and_shown_with_its_related_list(
    console: Console, stores: Any, worker: Any
) -> None:
    seed(stores, worker)
    console.sign_in()
    console.tab("catalogue")
    console.fill("#cat-id", "cook-1")
    console.el("#cat-open").click()
    console.wait(lambda d: console.el("#cat-f-title").get_attribute("value"), msg="item loaded")
    assert console.el("#cat-f-title").get_attribute("value") == CATALOGUE["cook-1"]["title"]
    assert console.el("#cat-f-categories").get_attribute("value") == "cooking"
    related = console.wait(lambda d: console.all("#cat-related-table tbody tr td a"))
    assert "cook-1" not in {a.text for a in related}

    console.fill("#cat-f-title", "Sourdough, step by step")
    console.el("#cat-save").click()
    console.wait(lambda d: "saved" in console.el("#cat-message").text, msg="saved")
    worker.drain()
    assert _item(console, "cook-1")["title"] == "Sourdough, step by step"

    console.el("#cat-hide").click()
    console.wait(lambda d: console.el("#cat-hide").text == "Show", msg="hidden")
    worker.drain()
    assert _item(console, "cook-1")["status"] == "hidden"
    console.el("#cat-open").click()  # reopened: the stored item, hidden, with the new title
    console.wait(lambda d: "hidden" in console.el("#cat-status").text, msg="reloaded")
    assert console.el("#cat-f-title").get_attribute("value") == "Sourdough, step by step"
    assert console.errors() == []


def _item(page: Console, item_id: str) -> Any:
    key = page.d.execute_script("return sessionStorage.getItem('vantage.console.key')")
    res = httpx.get(f"{page.base}/v1/items/{item_id}", headers={"Authorization": f"Bearer {key}"})
    return res.raise_for_status().json()


@contextmanager
def _job_runner(stores: Any, settings: Settings) -> Iterator[None]:
    """A worker's job runner, in a thread (batches of 16: several progress steps)."""
    s = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"reindex_batch": 16})}
    )
    stop = threading.Event()
    thread = threading.Thread(target=JobRunner(stores, s, "console-jobs").run, args=(stop,))
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


def test_a_reindex_started_from_the_console_reaches_100_percent(
    console: Console, stores: Any, worker: Any, settings: Settings
) -> None:
    seed(stores, worker, extra_items=60)
    console.sign_in()
    console.tab("jobs")

    def bar() -> Any:  # found afresh each time: the screen may re-render it
        return console.el("#job-progress").get_attribute("aria-valuenow")

    assert bar() == "0"
    seen: list[int] = []
    with _job_runner(stores, settings):
        console.el("#job-reindex").click()

        def finished(_: Any) -> bool:
            seen.append(int(bar()))
            return console.el("#job-current").get_attribute("data-state") in ("succeeded", "failed")

        console.wait(finished, timeout=60, msg="re-index job")
    assert console.el("#job-current").get_attribute("data-state") == "succeeded"
    assert bar() == "100" and seen == sorted(seen)
    assert "100%" in console.text("#job-progress-label")
    row = "#job-history-table tbody tr[data-job-id]"
    assert console.el(row).get_attribute("data-state") == "succeeded"
    assert "collection" in console.text(row)  # the job's result
    assert console.errors() == []


def test_a_pin_created_in_the_rules_screen_shows_at_its_position(
    console: Console, stores: Any, worker: Any
) -> None:
    from selenium.webdriver.support.ui import Select

    seed(stores, worker)
    console.sign_in()
    before = console.run_playground("reader", "homepage")
    # An item the list does not already show second.
    target = next(
        i
        for i in CATALOGUE
        if i not in {"space-1", "hidden-1", "horror-1", "fr-1"}
        and (2, i) not in {(p, x) for p, x, _ in before}
    )

    console.tab("rules")
    console.fill("#rule-id", "console-pin")
    Select(console.el("#rule-action")).select_by_value("pin")
    console.fill("#rule-item", target)
    console.fill("#rule-position", "2")
    console.el("#rule-surface-homepage").click()
    console.el("#rule-save").click()
    row = console.text('#rules-table tr[data-rule-id="console-pin"]')
    assert target in row and "#2" in row and "homepage" in row

    # Serving reads rules within about a second: run until the pin shows (or time out).
    def pinned_at(position: int) -> Callable[[Any], bool]:
        def shown(_: Any) -> bool:
            rows = console.run_playground("reader", "homepage")
            return (position, target) in {(p, i) for p, i, _ in rows}

        return shown

    console.wait(pinned_at(2), timeout=15, msg=f"{target} pinned at 2")
    rows = console.playground_rows()
    assert rows[1][1] == target and rows[1][2] == CATALOGUE[target]["title"]
    second = console.wait(lambda d: (console.all("#pg-a-table tbody tr[data-item-id]")[1].text,))[0]
    assert "featured" in second  # the reason a pin gives

    # Edited: the form takes the rule, the id stays, the new position is served.
    console.tab("rules")
    console.el('[data-edit="console-pin"]').click()
    assert console.el("#rule-id").get_attribute("readonly") is not None
    assert console.el("#rule-item").get_attribute("value") == target
    console.fill("#rule-position", "3")
    console.el("#rule-save").click()
    console.wait(lambda d: "#3" in console.el('#rules-table tr[data-rule-id="console-pin"]').text)
    console.wait(pinned_at(3), timeout=15, msg=f"{target} pinned at 3")

    # Deleted from the same screen: gone from the list.
    console.tab("rules")
    console.el('[data-delete="console-pin"]').click()
    console.d.switch_to.alert.accept()
    console.wait(lambda d: not console.all('#rules-table tr[data-rule-id="console-pin"]'))
    assert console.errors() == []


def test_a_dead_letter_replayed_from_the_queue_screen_is_applied(
    console: Console, stores: Any, worker: Any, settings: Settings
) -> None:
    worker.ensure_group()
    late = ev.encode(ev.INTERACTION_LOGGED, {"user_id": "u", "item_id": "late", "type": "like"})
    stores.redis.xadd(
        stores.keys.dead_letters(0), {**late, "original_id": "1-1", "error": "timeout"}
    )
    stores.redis.xadd(
        stores.keys.dead_letters(0),
        {"type": "nonsense", "data": "x", "t": "1", "original_id": "1-2", "error": "unknown type"},
    )
    key = console.sign_in()
    console.tab("queue")
    rows = console.wait(lambda d: console.all("#dl-table tbody tr[data-id]"), msg="dead letters")
    ids = [r.get_attribute("data-id") for r in rows]
    assert len(ids) == 2 and "2 dead letter(s)" in console.text("#dead-letters")
    assert console.text('#queue-summary [data-stat="dead letters"] dd') == "2"

    console.el(f'[data-replay="{ids[0]}"]').click()
    console.wait(lambda d: "replayed 1" in console.el("#dl-message").text, msg="replayed")
    console.wait(lambda d: len(console.all("#dl-table tbody tr[data-id]")) == 1)
    worker.drain()  # the replayed event is applied like any other
    assert float(stores.redis.zscore(stores.keys.popularity, "late") or 0) > 0

    console.el(f'[data-drop="{ids[1]}"]').click()
    console.d.switch_to.alert.accept()
    console.wait(lambda d: not console.all("#dl-table tbody tr[data-id]"), msg="dropped")
    auth = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{console.base}/v1/admin/dead-letters", headers=auth).json()["total"] == 0
    assert console.errors() == []


def _me(page: Console, key: str) -> httpx.Response:
    return httpx.get(f"{page.base}/v1/auth/me", headers={"Authorization": f"Bearer {key}"})


def test_a_key_created_in_the_keys_screen_works_and_is_revoked(console: Console) -> None:
    own = console.sign_in()
    console.tab("keys")
    console.fill("#keys-name", "web app")
    console.el("#keys-scope-recommend").click()
    console.el("#keys-create").click()
    secret = console.text("#keys-secret")
    assert "will not be shown again" in console.text("#keys-secret-box")
    key_id = console.el("#keys-secret-box").get_attribute("data-key-id")
    me = _me(console, secret)
    assert me.status_code == 200 and me.json()["scopes"] == ["recommend"]
    assert me.json()["key"]["name"] == "web app" and me.json()["key"]["key_id"] == key_id
    row = f'#keys-table tr[data-key-id="{key_id}"]'
    assert "web app" in console.text(row) and "recommend" in console.text(row)

    console.el(f'[data-revoke="{key_id}"]').click()
    assert key_id in console.d.switch_to.alert.text
    console.d.switch_to.alert.accept()
    console.wait(lambda d: console.el(row).get_attribute("data-revoked") == "true", msg="revoked")
    assert not console.all(f'[data-revoke="{key_id}"]')
    assert _me(console, secret).status_code == 401

    # The console's own key: the API refuses (409) and the screen says why.
    own_id = _me(console, own).json()["key"]["key_id"]
    console.el(f'[data-revoke="{own_id}"]').click()
    console.d.switch_to.alert.accept()
    refused = "this is the key you are using"
    console.wait(lambda d: refused in console.el("#keys-error").text, msg=refused)
    assert _me(console, own).status_code == 200
    assert console.errors() == []


def test_an_older_ranker_is_made_current_from_the_models_screen(
    console: Console, stores: Any
) -> None:
    registry = stores.registry  # the app's registry: the same Redis and models directory
    _save_ranker(registry, "v1-old", withdrawn="worse on the holdout")
    _save_ranker(registry, "v2-new")
    console.sign_in()
    console.tab("models")
    console.el('#models-ranker-table [data-make-current="v1-old"]').click()
    assert "worse on the holdout" in console.d.switch_to.alert.text  # withdrawn: confirm
    console.d.switch_to.alert.accept()
    message = "ranker v1-old is current (was v2-new)"
    console.wait(lambda d: message in console.el("#models-message").text, msg=message)
    assert registry.current("ranker") == "v1-old"
    row = '#models-ranker-table tr[data-version="v1-old"]'
    console.wait(lambda d: console.el(row).get_attribute("data-current") == "true")
    assert console.all('#models-ranker-table [data-make-current="v2-new"]')
    assert not console.all("#models-cf-table [data-make-current]")  # cf: retrain instead
    assert console.errors() == []


def test_a_ranker_canary_is_started_from_the_models_screen_and_stopped(
    console: Console, stores: Any
) -> None:
    registry = stores.registry  # the app's registry: the same Redis and models directory
    _ranker(registry, "v1-live", publish=True, seed=1)
    _ranker(registry, "v2-next", publish=False, seed=2)  # saved, and listed as the gate does
    info = json.dumps({"val_ndcg10_ranker": 0.3, "published": False})
    stores.redis.hset(stores.keys.model_versions("ranker"), "v2-next", info)
    key = console.sign_in()
    console.tab("models")
    assert "No canary has run yet" in console.text("#models-canary-none")
    console.fill('[data-canary-share="v2-next"]', "0.25")
    console.el('[data-start-canary="v2-next"]').click()

    card = "#models-canary-current"
    console.wait(lambda d: console.el(card).get_attribute("data-state") == "running", msg="running")
    assert console.el(card).get_attribute("data-version") == "v2-next"
    text = console.text(card)
    assert "against v1-live" in text and "share 25% of users" in text
    assert "canary v2-next started" in console.text("#models-message")
    # The evidence now: too little traffic to decide, both arms counted.
    assert console.el("#models-canary-now").get_attribute("data-decision") == "continue"
    assert console.el("#models-canary-now svg.interval circle")
    arms = [r.get_attribute("data-variant") for r in console.all("#models-canary-arms tbody tr")]
    assert arms == ["default", "canary-v2-next"]
    row = '#models-ranker-table tr[data-version="v2-next"]'
    assert "canary (25% of users)" in console.text(row)
    assert not console.el('[data-start-canary="v2-next"]').is_enabled()  # one at a time
    auth = {"Authorization": f"Bearer {key}"}
    got = httpx.get(f"{console.base}/v1/admin/models/ranker/canary", headers=auth).json()
    assert got["canary"]["share"] == 0.25 and got["canary"]["baseline"] == "v1-live"

    console.el("#models-canary-stop").click()
    console.d.switch_to.alert.accept()
    console.wait(lambda d: console.el(card).get_attribute("data-state") == "rolled_back")
    assert "stopped from the console" in console.text(card)
    assert not console.all("#models-canary-stop") and not console.all("#models-canary-now")
    events = [
        (r.get_attribute("data-event"), r.get_attribute("data-version"))
        for r in console.all("#models-canary-log tbody tr[data-event]")
    ]
    assert events == [("rolled_back", "v2-next"), ("started", "v2-next")]
    assert registry.current("ranker") == "v1-live"
    assert console.el('[data-start-canary="v2-next"]').is_enabled()  # another may start
    assert console.errors() == []


def test_the_catalogue_is_searched_by_meaning_and_a_hit_opened(
    console: Console, stores: Any, worker: Any, settings: Settings
) -> None:
    seed(stores, worker)
    console.sign_in()
    console.tab("catalogue")
    console.fill("#cat-search", "planets and galaxies")
    console.el("#cat-search-go").click()
    first = "#cat-search-table tbody tr[data-item-id]"
    # The server's first search loads its text model: give it time.
    top = console.wait(lambda d: console.el(first).get_attribute("data-item-id"), timeout=90)
    assert console.el(first).get_attribute("data-category") == "space"
    assert console.text("#cat-search-model") == settings.models.text_model
    console.el(f"{first} a").click()
    title = CATALOGUE[top]["title"]
    console.wait(lambda d: console.el("#cat-f-title").get_attribute("value") == title, msg=title)
    assert console.el("#cat-id").get_attribute("value") == top
    assert console.errors() == []


def _impressions_counted(stores: Any) -> int:
    """Items served, as every shard's surface counters say (each item once)."""
    k = stores.keys
    return sum(
        int(n)
        for shard in range(RECS_SHARDS)
        for f, n in stores.redis.hgetall(k.surface_stats(shard)).items()
        if f.decode().startswith("imp|") and f.decode().split("|")[2] == "*"
    )


def test_the_hourly_chart_shows_this_hours_impressions_and_clicks(
    console: Console, stores: Any, worker: Any
) -> None:
    seed(stores, worker)
    key = console.sign_in()
    auth = {"Authorization": f"Bearer {key}"}
    since = int(time.time()) // 3600 * 3600
    rec = httpx.get(
        f"{console.base}/v1/recommendations",
        params={"user_id": "reader", "limit": 4},
        headers=auth,
    ).json()
    rid, served = rec["recommendation_id"], len(rec["items"])
    # The list is logged asynchronously; a click is attributed once it is.
    console.wait(lambda d: stores.redis.exists(stores.keys.rec_info(rid)), msg="list logged")
    # Its counters follow within a second (summed in the API process): the chart reads them.
    console.wait(lambda d: _impressions_counted(stores) == served, msg="impressions counted")
    click = {"user_id": "reader", "item_id": rec["items"][0]["item_id"], "type": "click"}
    res = httpx.post(
        f"{console.base}/v1/interactions", json={**click, "recommendation_id": rid}, headers=auth
    )
    assert res.status_code == 202
    worker.drain()

    console.tab("analytics")

    def counted(_: Any) -> tuple[list[tuple[int, int, int]]] | None:
        hours = [
            (
                int(g.get_attribute("data-hour")),
                int(g.get_attribute("data-impressions")),
                int(g.get_attribute("data-clicks")),
            )
            for g in console.all("#an-hourly g.hour")
        ]
        return (hours,) if hours else None  # not drawn yet: ask again

    hours = console.wait(counted, msg="hourly chart")[0]
    assert len(hours) == 24  # the default span, empty hours included
    busy = [(h, i, c) for h, i, c in hours if i or c]
    assert busy and all(h >= since for h, _, _ in busy)  # this hour (or the next, at a turn)
    assert sum(i for _, i, _ in busy) == served and sum(c for *_, c in busy) == 1
    assert console.errors() == []


def test_the_models_screen_shows_the_ranker_features_most_drifted_first(
    console: Console, monkeypatch: Any
) -> None:
    import numpy as np

    from app.routes import admin as admin_routes
    from serving.drift import MIN_ROWS, DriftMonitor, reference

    # The API runs in this process: its drift route reads a monitor this test feeds.
    monitor = DriftMonitor()
    monkeypatch.setattr(admin_routes, "MONITOR", monitor)
    console.sign_in()
    console.tab("models")
    empty = f"not enough scored rows yet (0 of {MIN_ROWS})"
    assert console.text("#models-drift-empty") == empty

    rng = np.random.default_rng(0)
    names = ("steady", "moved")
    trained = np.column_stack([rng.normal(0, 1, 4000), rng.normal(0, 1, 4000)])
    served = np.column_stack([rng.normal(0, 1, 1000), rng.normal(1.5, 1, 1000)])
    monitor.observe("v7", reference(trained, names), names, served)
    console.tab("rules")
    console.tab("models")  # shown again: read again

    def bars(_: Any) -> tuple[list[tuple[str, str]]] | None:
        found = [
            (g.get_attribute("data-feature"), g.get_attribute("data-level"))
            for g in console.all("#models-drift g[data-feature]")
        ]
        return (found,) if found else None

    assert console.wait(bars, msg="drift bars")[0] == [("moved", "drift"), ("steady", "stable")]
    assert "ranker v7 · 1000 rows counted" in console.text("#models-drift")
    assert console.errors() == []


def test_the_experiments_screen_shows_each_arm_as_the_api_counts_it(
    browser: Any, settings: Settings, stores: Any, worker: Any
) -> None:
    with open_console(browser, _with_variant(settings)) as console:
        seed(stores, worker)
        auth = {"Authorization": f"Bearer {console.sign_in()}"}
        served = {"default": 0, "calm": 0}  # impressions per arm
        for n in range(16):  # users are assigned by a stable hash: both arms get lists
            body = httpx.get(
                f"{console.base}/v1/recommendations",
                params={"user_id": f"exp-{n}", "limit": 4},
                headers=auth,
            ).json()
            served[body["variant"]] += len(body["items"])
        assert all(served.values()), served

        def counted() -> dict[str, int]:
            got = httpx.get(f"{console.base}/v1/admin/experiments", headers=auth).json()["items"]
            return {a["variant"]: a["impressions"] for a in got[0]["arms"]}

        # The lists are logged asynchronously: the API counts them within a moment.
        console.wait(lambda d: counted() == served, msg=f"impressions {served}")
        console.tab("experiments")
        rows = "#exp-homepage-arms tbody tr[data-variant]"

        def shown(_: Any) -> tuple[dict[str, int]] | None:
            got = {
                r.get_attribute("data-variant"): int(r.get_attribute("data-impressions"))
                for r in console.all(rows)
            }
            return (got,) if got else None

        assert console.wait(shown, msg="arms table")[0] == counted() == served
        calm = console.el('#exp-homepage .comparison[data-variant="calm"]')
        assert calm.get_attribute("data-decision") == "continue"
        assert console.text("#exp-homepage-vs-calm .reason").startswith("collecting")
        assert console.el("#exp-homepage-vs-calm svg.interval circle")
        guards = console.all("#exp-homepage-vs-calm-guardrails tbody tr[data-guardrail]")
        assert guards and all(g.get_attribute("data-breached") == "null" for g in guards)
        states = console.text("#exp-homepage-vs-calm-guardrails tbody")
        assert states.count("not judged yet") == len(guards)  # too few lists to judge one
        assert "always-valid" in console.text("#exp-note")
        assert console.errors() == []
