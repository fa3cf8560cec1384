"""Screenshots of the operator console for the README: one PNG per screen in docs/console/.

Starts a throw-away embedded stack (redis-server and Milvus Lite, as the benchmarks do), seeds
the demo data set and trains the interaction model (as `vantage run` does), starts one worker
and the API, the homepage with a variant (`more_diverse`, half the users, as the README's
example), gives each screen something to show (served lists and clicks for the analytics and
both arms of the experiment, two rules, a dead letter, three API keys (one revoked), "why not?"
asked in the playground for the trending column's top item missing from the homepage, a
re-index started from the console, a search by meaning with a hit opened, a key created in the
keys screen with its secret shown once), and saves each screen from headless Chromium at
1280x800 (Debian's `chromium` and `chromium-driver`). No re-ranker is trained, so the models
screen's feature drift says it has no scored rows yet and no canary has run.

    python bench/console_screenshots.py [--out docs/console]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._stack import admin_headers, fresh_stack, start_api, start_worker
from core.settings import Settings
from core.surfaces import SurfaceConfig
from indexing.connect import build_stores
from vantage.commands.run import seed_demo

ROOT = Path(__file__).resolve().parents[1]
SIZE = (1280, 800)


def browser() -> Any:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        raise SystemExit("needs Debian's chromium and chromium-driver (make tools)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars"):
        opts.add_argument(arg)
    d = webdriver.Chrome(options=opts, service=Service(executable_path=driver))
    # The page gets exactly 1280x800 CSS pixels at scale 1, whatever the window adds around it.
    d.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": SIZE[0], "height": SIZE[1], "deviceScaleFactor": 1, "mobile": False},
    )
    return d


def with_experiment(settings: Settings) -> Settings:
    """These settings with a homepage variant: the README's example, for half the users."""
    raw = settings.surfaces["homepage"].model_dump()
    policy = {"mmr_lambda": 0.7, "category_cap": 3}
    raw["variants"] = {"more_diverse": {"share": 0.5, "overrides": {"policy": policy}}}
    home = SurfaceConfig.model_validate(raw)
    return settings.model_copy(update={"surfaces": {**settings.surfaces, "homepage": home}})


def traffic(http: httpx.Client, rng: random.Random) -> None:
    """Served lists (impressions) on three surfaces and clicks on some of their items; the
    homepage for more users, so that both arms of its experiment serve enough lists for the
    guardrails to be judged (100 each). The clicks are sent once every list is logged (the
    impression log writes asynchronously; a click citing a list not logged yet is not
    attributed)."""
    rate = {"homepage": 0.09, "trending": 0.05, "related": 0.12}
    clicks: list[dict[str, Any]] = []
    for n in range(1, 321):
        user = f"u-{n:04d}"
        for surface, extra in (
            ("homepage", {}),
            ("trending", {}),
            ("related", {"item_id": f"demo-{rng.randint(1, 600):04d}"}),
        ):
            if surface != "homepage" and n > 120:
                continue
            rec = http.get(
                "/v1/recommendations",
                params={"user_id": user, "surface": surface, "limit": 10, **extra},
            ).json()
            clicks += [
                {
                    "user_id": user,
                    "item_id": i["item_id"],
                    "type": "click",
                    "surface": surface,
                    "recommendation_id": rec["recommendation_id"],
                }
                for i in rec.get("items", [])
                if rng.random() < rate[surface]
            ]
    time.sleep(2)
    for start in range(0, len(clicks), 500):
        http.post("/v1/interactions", json=clicks[start : start + 500]).raise_for_status()


def operator_data(http: httpx.Client, stores: Any) -> None:
    """Two rules, an event the worker cannot apply (a dead letter) and API keys, one revoked."""
    week = time.time() + 7 * 86_400
    http.put(
        "/v1/admin/rules/spring-pin",
        json={
            "action": "pin",
            "item_id": "demo-0042",
            "position": 2,
            "surfaces": ["homepage"],
            "expires_at": week,
            "note": "spring campaign",
        },
    ).raise_for_status()
    http.put(
        "/v1/admin/rules/less-horror",
        json={
            "action": "bury",
            "category": "horror",
            "weight": 0.3,
            "note": "less horror on every surface",
        },
    ).raise_for_status()
    stores.redis.xadd(stores.keys.stream(0), {"type": "item.renamed", "data": '{"item_id": "x"}'})
    for name, scopes, limits in (
        ("old mobile app", ["recommend"], {}),
        ("web app", ["recommend", "events"], {"rate_per_s": 200, "burst": 400}),
        ("catalogue sync", ["catalog"], {"rate_per_s": 20, "burst": 50}),
    ):
        key = http.post("/v1/admin/keys", json={"name": name, "scopes": scopes, **limits})
        key_id = key.raise_for_status().json()["key_id"]
        if name.startswith("old"):
            http.post(f"/v1/admin/keys/{key_id}/revoke").raise_for_status()


class Shots:
    def __init__(self, d: Any, base: str, out: Path):
        self.d, self.base, self.out = d, base, out

    def el(self, css: str, timeout: float = 30) -> Any:
        return WebDriverWait(self.d, timeout).until(lambda d: d.find_element(By.CSS_SELECTOR, css))

    def wait(self, cond: Any, timeout: float = 60) -> None:
        WebDriverWait(self.d, timeout, poll_frequency=0.2).until(cond)

    def save(self, screen: str) -> None:
        time.sleep(0.4)  # let the last paint settle
        path = self.out / f"{screen}.png"
        self.d.save_screenshot(str(path))
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KB")

    def open(self, screen: str, ready: str) -> None:
        self.el(f"#tab-{screen}").click()
        self.el(ready)


def shoot(s: Shots, key: str) -> None:
    s.d.get(f"{s.base}/console")
    s.el("#signin-key").send_keys(key)
    s.el("#signin-submit").click()
    s.el("#pg-run")
    s.el("#pg-a-user").clear()
    s.el("#pg-a-user").send_keys("u-0007")
    s.el("#pg-compare").click()
    Select(s.el("#pg-b-surface")).select_by_value("trending")
    s.el("#pg-run").click()
    s.el("#pg-a-table tbody tr[data-item-id]")
    s.el("#pg-b-table tbody tr[data-item-id]")
    # Once more: of the two columns' concurrent first requests, one may still be served the
    # rules as they were before operator_data wrote the pin (the other refreshes them).
    first = s.el("#pg-a-meta").text
    s.el("#pg-run").click()
    s.wait(lambda d: s.el("#pg-a-meta").text not in ("", first))
    s.el("#pg-a-table tbody tr[data-item-id]")
    s.el("#pg-b-table tbody tr[data-item-id]")

    # Why is the trending column's top item (the first the homepage lacks) not on the homepage?
    def ids(side: str) -> list[str]:
        rows = s.d.find_elements(By.CSS_SELECTOR, f"#pg-{side}-table tbody tr[data-item-id]")
        return [r.get_attribute("data-item-id") for r in rows]

    home, trending = set(ids("a")), ids("b")
    s.el("#pg-a-whynot-item").send_keys(next((i for i in trending if i not in home), trending[0]))
    s.el("#pg-a-whynot-go").click()
    s.el("#pg-a-whynot-result[data-stage]")
    s.save("playground")

    # Items found by meaning; the top one opened, with its related list for the user.
    s.open("catalogue", "#cat-search")
    s.el("#cat-as-user").clear()
    s.el("#cat-as-user").send_keys("u-0007")
    s.el("#cat-search").send_keys("bread baking at home")
    s.el("#cat-search-go").click()
    hit = "#cat-search-table tbody tr[data-status='active'] a"
    s.el(hit, timeout=120).click()  # the first search loads the text model
    s.el("#cat-related-table tbody tr")
    s.save("catalogue")

    s.open("jobs", "#job-reindex")
    s.el("#job-reindex").click()
    s.wait(lambda d: s.el("#job-progress").get_attribute("aria-valuenow") == "100", timeout=300)
    s.wait(lambda d: s.el("#job-history-table tbody tr[data-state='succeeded']"))
    s.save("jobs")

    for screen, ready in (
        ("models", "#models-cf-table"),
        ("rules", "#rules-table tbody tr[data-rule-id]"),
        ("analytics", "#an-rows tbody tr"),
        ("experiments", "#exp-homepage .comparison svg.interval"),
        ("queue", "#dl-table tbody tr[data-id]"),
    ):
        s.open(screen, ready)
        if screen == "analytics":
            s.el("#an-hourly g.hour")  # drawn beside the table, from another request
        s.save(screen)

    # A key created here: its secret shown once, above the list.
    s.open("keys", "#keys-table tbody tr[data-key-id]")
    s.el("#keys-name").send_keys("analytics export")
    s.el("#keys-scope-admin").click()
    s.el("#keys-create").click()
    s.el("#keys-secret")
    s.save("keys")


def wait_for_worker(http: httpx.Client) -> None:
    deadline = time.monotonic() + 120
    while not http.get("/v1/admin/queue").json()["workers"]:
        if time.monotonic() > deadline:
            raise SystemExit("the worker did not start")
        time.sleep(0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "console")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with fresh_stack() as stack:
        settings = with_experiment(stack)  # the API and the worker get it in their environment
        stores = build_stores(settings, log_writer="import")
        seed_demo(stores, settings)
        worker = start_worker(settings, "shots-worker")
        api, base = start_api(settings)
        headers = admin_headers(settings)
        d = browser()
        try:
            with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
                wait_for_worker(http)
                traffic(http, random.Random(7))
                operator_data(http, stores)
                time.sleep(3)  # the worker attributes the clicks and dead-letters the event
            shoot(Shots(d, base, args.out), headers["Authorization"].split(" ", 1)[1])
        finally:
            d.quit()
            api.terminate()
            worker.terminate()
            api.wait(15)
            worker.wait(15)


if __name__ == "__main__":
    main()
