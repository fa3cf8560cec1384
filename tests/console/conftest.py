"""The operator console in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, installed by `make tools`) driven by selenium, against the real app behind
uvicorn (the `serve` helper of tests/integration/test_reindex.py) on real Milvus and Redis.

Without Chromium or its driver the browser tests skip, saying what to install; under CI
(`CI` set) they fail instead, so a machine without them cannot pass the suite by skipping.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from core import events as ev
from core.domain import Interaction, Item
from core.settings import Settings
from tests.integration.conftest import CATALOGUE
from tests.integration.test_reindex import serve

WINDOW = (1280, 800)
WAIT_S = 20.0


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    missing = " and ".join(
        n for n, p in (("chromium", chromium), ("chromedriver", driver)) if not p
    )
    reason = (
        f"{missing} not found: install Debian's packages "
        "(apt-get install --no-install-recommends chromium chromium-driver, or `make tools`)"
    )
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def new_browser() -> Any:
    """Headless Chromium at 1280x800, its console log readable by the tests."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = _browser_paths()
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: selenium's own manager never looks anything up online.
    return webdriver.Chrome(options=opts, service=Service(executable_path=driver))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = new_browser()
    try:
        yield driver
    finally:
        driver.quit()


def seed(stores: Any, worker: Any, extra_items: int = 0) -> None:
    """The integration catalogue (plus `extra_items` plain ones), a reader who liked one item
    and a few views that make others popular."""
    items = [ev.item_event(Item(item_id=i, **b)) for i, b in CATALOGUE.items()]
    items += [
        ev.item_event(Item(item_id=f"bulk-{n}", title=f"Bulk item {n}", categories=["misc"]))
        for n in range(extra_items)
    ]
    ev.publish(stores.redis, stores.keys, items)
    worker.drain()  # items first: a like folds the liked item's vector into the profile
    views = [("reader", "space-1", "like")] + [
        (f"fan-{n}", i, "view") for n in range(3) for i in ("cook-1", "cook-2", "space-3")
    ]
    ev.publish(
        stores.redis,
        stores.keys,
        [ev.interaction_event(Interaction(user_id=u, item_id=i, type=t)) for u, i, t in views],
    )
    worker.drain()


def new_key(settings: Settings, name: str, scopes: tuple[str, ...]) -> str:
    """A fresh API key named `name` (generous limits), as `vantage keys create` makes one."""
    from app.auth import KeyStore
    from core.connect import connect_redis
    from core.keys import Keys

    r = connect_redis(settings)
    try:
        token, _ = KeyStore(r, Keys.of(settings.redis)).create(
            name, list(scopes), rate=10_000, burst=10_000
        )
    finally:
        r.close()
    return token


class Console:
    """The console page of one test's server in the shared browser, and its API key."""

    def __init__(self, driver: Any, base: str, settings: Settings):
        self.d = driver
        self.base = base
        self.settings = settings

    def wait(self, what: Callable[[Any], Any], timeout: float = WAIT_S, msg: str = "") -> Any:
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
        )
        from selenium.webdriver.support.ui import WebDriverWait

        # A screen re-renders its table when data arrives: an element found a moment ago can
        # be gone by the time it is read. Asking again is the answer, as for a missing one.
        ignored = (NoSuchElementException, StaleElementReferenceException)
        wait = WebDriverWait(self.d, timeout, poll_frequency=0.1, ignored_exceptions=ignored)
        return wait.until(what, msg)

    def el(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.wait(lambda d: d.find_element(By.CSS_SELECTOR, css), msg=css)

    def text(self, css: str) -> str:
        """The text of the element `css` selects, read again if it is re-rendered meanwhile."""
        from selenium.webdriver.common.by import By

        found: str = self.wait(lambda d: (d.find_element(By.CSS_SELECTOR, css).text,), msg=css)[0]
        return found

    def all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.d.find_elements(By.CSS_SELECTOR, css))

    def fill(self, css: str, value: str) -> None:
        box = self.el(css)
        box.clear()
        box.send_keys(value)

    def sign_in(self, scopes: tuple[str, ...] = ("admin",), name: str = "console test") -> str:
        self.d.get(f"{self.base}/console")
        self.d.execute_script("sessionStorage.clear()")
        self.d.get(f"{self.base}/console")
        key = new_key(self.settings, name, scopes)
        self.fill("#signin-key", key)
        self.el("#signin-submit").click()
        self.el("#tab-playground")
        return key

    def tab(self, screen: str) -> Any:
        self.el(f"#tab-{screen}").click()
        return self.wait(lambda d: d.find_element("id", f"screen-{screen}").is_displayed())

    def playground_rows(self, side: str = "a") -> list[tuple[int, str, str]]:
        """(position, item id, title) of each row the playground shows (read again if the
        table re-renders while it is read)."""

        def read(_: Any) -> tuple[list[tuple[int, str, str]]]:
            out = []
            for r in self.all(f"#pg-{side}-table tbody tr[data-item-id]"):
                title = r.find_element("css selector", ".title").text
                out.append(
                    (int(r.get_attribute("data-position")), r.get_attribute("data-item-id"), title)
                )
            return (out,)  # a tuple: truthy even when the list is empty

        rows: list[tuple[int, str, str]] = self.wait(read, msg="playground rows")[0]
        return rows

    def run_playground(self, user: str, surface: str) -> list[tuple[int, str, str]]:
        from selenium.webdriver.support.ui import Select

        self.tab("playground")
        self.fill("#pg-a-user", user)
        Select(self.el("#pg-a-surface")).select_by_value(surface)
        before = self.el("#pg-status").text
        self.el("#pg-run").click()
        self.wait(lambda d: self.el("#pg-status").text not in (before, "running…"))
        return self.playground_rows()

    def errors(self) -> list[str]:
        """Severe entries of the browser's console log (script errors, blocked or failed
        loads), but API answers: Chromium logs every 4xx, and some are expected (a 404 for an
        item to create, a 409 shown to the operator)."""
        return [
            e["message"]
            for e in self.d.get_log("browser")
            if e["level"] == "SEVERE" and not (e["source"] == "network" and "/v1/" in e["message"])
        ]


@contextmanager
def open_console(browser: Any, settings: Settings) -> Iterator[Console]:
    """The app on `settings` behind uvicorn (in this process), and its console in `browser`."""
    with serve(settings) as base:
        page = Console(browser, base, settings)
        browser.get_log("browser")  # drop what earlier tests left
        try:
            yield page
        finally:
            # Leave the page before the server stops: no poll of a gone server in the next test.
            browser.get("about:blank")


@pytest.fixture
def console(browser: Any, settings: Settings) -> Iterator[Console]:
    """The console of the app on the test's settings (a test needing other settings, such as
    surface variants, calls `open_console` with them instead)."""
    with open_console(browser, settings) as page:
        yield page
