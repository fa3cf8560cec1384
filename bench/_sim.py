"""A simulated audience whose clicks are known, driving real traffic through the API.

**The world.** Items belong to one of `TOPICS` (title and description from the topic's words,
embedded by the real text model) and have a quality `q` in [0.3, 1]. Each user favours one or
two topics (stated at sign-up as preferences, and shown by a few likes). A user clicks the
item at position `k` of a list with probability `attract(u, i) * bias(k)` (a position-based
click model, the assumption of the item-position estimators):

    attract(u, i) = BASE + LIFT * q_i   if i is in one of u's topics,  else BASE
    bias(k)       = k ** -ETA

So the expected CTR of any list is known exactly: `sum_k attract(u, i_k) bias(k) / K`.

**Traffic.** `serve` asks the API for users' lists, draws each item's click from the model and
reports the clicks as `click` interactions citing the list's `recommendation_id` (what an app
does); `drain` (the worker) applies them. `expected_ctr` asks the API for the list a surface
serves each user and returns the exact expected CTR of those lists: with `sim_surfaces`, a
candidate configuration is a surface of its own (exploration and cache off), so its true CTR is
measured on the users' current state, independently of the off-policy machinery. `shadow_ctr`
is the exact expected CTR of the lists serving computed for a registered candidate beside the
served ones (its shadow lists): what the shadow estimate estimates.

Everything derives from a seed. Used by bench/simulate.py (full runs) and by the tests
(reduced runs).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from core.settings import Settings

TOPICS = {
    "space": "rockets astronauts planets galaxies orbit telescope nebula comet",
    "cooking": "recipes kitchen bread pasta baking oven flavours spices",
    "garden": "plants flowers soil seeds pruning roses vegetables compost",
    "football": "goals match league players stadium striker penalty referee",
    "jazz": "saxophone trumpet swing improvisation quartet bebop club trio",
    "finance": "stocks bonds markets interest savings inflation budget shares",
    "travel": "flights hotels beaches islands passports mountains trains maps",
    "history": "empires kings battles castles revolutions medieval ancient archives",
    "science": "atoms molecules experiments physics chemistry laboratory cells energy",
    "cinema": "films directors actors screenplay premiere festival studio scenes",
}
BASE, LIFT, ETA = 0.02, 0.5, 0.8
SURFACE = "homepage"
NOW = 1_764_979_200  # items' publication times count back from here (fixed: seeded worlds)


class Client(Protocol):
    """What the simulator needs of an HTTP client (httpx.Client, fastapi's TestClient)."""

    def get(self, url: str, *, params: Any = None) -> Any: ...
    def post(self, url: str, *, json: Any = None) -> Any: ...
    def put(self, url: str, *, json: Any = None) -> Any: ...


@dataclass
class Patient:
    """A client that retries a 503 (Milvus Lite timing out on a busy machine) a few times:
    a run's numbers should not hinge on one slow search."""

    client: Client
    tries: int = 6

    def _call(self, fn: Callable[..., Any], url: str, **kw: Any) -> Any:
        for attempt in range(self.tries):
            res = fn(url, **kw)
            if res.status_code != 503 or attempt == self.tries - 1:
                return res
            time.sleep(1.0 + attempt)
        raise AssertionError("unreachable")

    def get(self, url: str, *, params: Any = None) -> Any:
        return self._call(self.client.get, url, params=params)

    def post(self, url: str, *, json: Any = None) -> Any:
        return self._call(self.client.post, url, json=json)

    def put(self, url: str, *, json: Any = None) -> Any:
        return self._call(self.client.put, url, json=json)


@dataclass
class World:
    topic: dict[str, str]  # item -> topic
    quality: dict[str, float]
    favourites: dict[str, tuple[str, ...]]  # user -> topics
    eta: float = ETA
    rng: random.Random = field(default_factory=random.Random)

    @property
    def users(self) -> list[str]:
        return list(self.favourites)

    def cohort(self, tag: str, users: int) -> World:
        """New users (ids `sim-<tag>-<n>`, tastes drawn as `make_world` draws them) in the
        same catalogue: repeated runs each start from users who have clicked nothing yet, so
        runs are alike instead of each exhausting what the previous ones left."""
        names = list(TOPICS)
        fav = {
            f"sim-{tag}-{u}": tuple(self.rng.sample(names, self.rng.choice((1, 2))))
            for u in range(users)
        }
        return replace(self, favourites=fav)

    def attract(self, user: str, item: str) -> float:
        if self.topic.get(item) in self.favourites[user]:
            return BASE + LIFT * self.quality[item]
        return BASE

    def bias(self, pos: int) -> float:
        return float(pos**-self.eta)

    def expected_clicks(self, user: str, items: Sequence[str]) -> float:
        return sum(self.attract(user, i) * self.bias(k) for k, i in enumerate(items, 1))

    def clicks(self, user: str, items: Sequence[str]) -> list[str]:
        """One draw of which of a shown list's items the user clicks."""
        return [
            i
            for k, i in enumerate(items, 1)
            if self.rng.random() < self.attract(user, i) * self.bias(k)
        ]


def make_world(*, users: int, items_per_topic: int, seed: int) -> World:
    rng = random.Random(seed)
    topic, quality = {}, {}
    for t in TOPICS:
        for k in range(items_per_topic):
            item = f"{t}-{k}"
            topic[item], quality[item] = t, round(rng.uniform(0.3, 1.0), 3)
    names = list(TOPICS)
    fav = {f"sim-{u}": tuple(rng.sample(names, rng.choice((1, 2)))) for u in range(users)}
    return World(topic, quality, fav, rng=random.Random(seed + 1))


def catalogue(world: World) -> list[dict[str, Any]]:
    words = {t: w.split() for t, w in TOPICS.items()}
    out = []
    for n, (item, t) in enumerate(world.topic.items()):
        k = int(item.rsplit("-", 1)[1])
        pick = [words[t][(k + j) % len(words[t])] for j in range(4)]
        out.append(
            {
                "item_id": item,
                "title": f"{t.title()}: {' '.join(pick[:2])} {k}",
                "description": f"{TOPICS[t]} {' '.join(pick)}",
                "categories": [t],
                "creator_id": f"{t}-maker-{k % 5}",
                "published_at": NOW - (n + 1) * 86_400,
                "language": "en",
            }
        )
    return out


def sim_surfaces(
    settings: Settings, logging: dict[str, Any], candidates: dict[str, dict[str, Any]]
) -> Settings:
    """Settings whose homepage is the logging policy (`logging`: overrides; result cache off, so
    every request is a fresh draw), and one surface `sim_<name>` per candidate: the homepage
    with the candidate's overrides, exploration and cache off (its true CTR)."""
    base = settings.surfaces[SURFACE].with_overrides({**logging, "cache_ttl_s": 0})
    surfaces = {**settings.surfaces, SURFACE: base}
    for name, over in candidates.items():
        cand = base.with_overrides(over)
        policy = cand.policy.model_copy(update={"exploration_share": 0.0})
        surfaces[f"sim_{name}"] = cand.model_copy(update={"policy": policy, "cache_ttl_s": 0})
    return settings.model_copy(update={"surfaces": surfaces})


def ok(res: Any) -> Any:
    assert res.status_code < 300, f"{res.status_code}: {res.text[:500]}"
    return res.json()


def populate(client: Client, drain: Callable[[], Any], world: World, *, likes: int = 4) -> None:
    """The catalogue, the users (their topics as preferences) and a few likes each."""
    items = catalogue(world)
    for i in range(0, len(items), 200):
        ok(client.post("/v1/items/batch", json={"items": items[i : i + 200]}))
    drain()
    sign_up(client, drain, world, likes=likes)


def sign_up(client: Client, drain: Callable[[], Any], world: World, *, likes: int = 4) -> None:
    """The world's users: their topics as preferences and a few likes each."""
    by_topic: dict[str, list[str]] = {}
    for item, t in world.topic.items():
        by_topic.setdefault(t, []).append(item)
    events = []
    for user, fav in world.favourites.items():
        body = {"birth_year": 1985, "language": "en", "preferences": {"categories": list(fav)}}
        ok(client.put(f"/v1/users/{user}", json=body))
        for _ in range(likes):
            item = world.rng.choice(by_topic[world.rng.choice(fav)])
            events.append({"user_id": user, "item_id": item, "type": "like"})
    for i in range(0, len(events), 500):
        ok(client.post("/v1/interactions", json=events[i : i + 500]))
    drain()


@dataclass
class Served:
    lists: int = 0
    clicks: int = 0
    expected: float = 0.0  # expected clicks of the lists served
    positions: int = 10
    by_variant: dict[str, list[float]] = field(default_factory=dict)  # [lists, expected clicks]
    lists_served: list[tuple[str, str]] = field(default_factory=list)  # (user, recommendation id)

    @property
    def ctr(self) -> float:
        return self.expected / max(self.lists * self.positions, 1)


def serve(
    client: Client,
    world: World,
    users: Sequence[str],
    *,
    repeats: int = 1,
    limit: int = 10,
    surface: str = SURFACE,
) -> Served:
    """Each user asks `repeats` lists; their clicks are drawn and reported as interactions."""
    out, events = Served(positions=limit), []
    for _ in range(repeats):
        for user in users:
            body = ok(client.get("/v1/recommendations", params=_ask(user, surface, limit)))
            items = [it["item_id"] for it in body["items"]]
            exp = world.expected_clicks(user, items)
            out.lists += 1
            out.expected += exp
            out.lists_served.append((user, body["recommendation_id"]))
            arm = out.by_variant.setdefault(body["variant"], [0.0, 0.0])
            arm[0], arm[1] = arm[0] + 1, arm[1] + exp
            for item in world.clicks(user, items):
                out.clicks += 1
                ev = {"user_id": user, "item_id": item, "type": "click"}
                events.append({**ev, "recommendation_id": body["recommendation_id"]})
    for i in range(0, len(events), 500):
        ok(client.post("/v1/interactions", json=events[i : i + 500]))
    return out


def expected_ctr(
    client: Client, world: World, surface: str, users: Sequence[str], limit: int = 10
) -> float:
    """The exact expected CTR of the lists `surface` serves `users` now (nothing is clicked)."""
    total = 0.0
    for user in users:
        body = ok(client.get("/v1/recommendations", params=_ask(user, surface, limit)))
        total += world.expected_clicks(user, [it["item_id"] for it in body["items"]])
    return total / (len(users) * limit)


def shadow_ctr(
    world: World,
    served: Served,
    shadow_list: Callable[[str, str], list[str] | None],
    name: str,
) -> float | None:
    """The exact expected CTR of candidate `name`'s shadow lists beside the `served` lists
    (`shadow_list(recommendation_id, name)`: the stored list, None when not shadowed): the
    very quantity the shadow estimate estimates. Each counts the positions its logged list
    showed, as the estimators do."""
    total, lists = 0.0, 0
    for user, rec_id in served.lists_served:
        items = shadow_list(rec_id, name)
        if items is not None:
            total += world.expected_clicks(user, items[: served.positions])
            lists += 1
    return total / (lists * served.positions) if lists else None


def _ask(user: str, surface: str, limit: int) -> dict[str, Any]:
    return {"user_id": user, "surface": surface, "limit": limit}


def ope_round(
    client: Client,
    drain: Callable[[], Any],
    flush: Callable[[], Any],
    world: World,
    candidates: dict[str, dict[str, Any]],
    *,
    repeats: int,
    boots: int = 300,
    methods: Sequence[str] = ("shadow", "replay"),
    limits: dict[str, float] | None = None,
    shadow_list: Callable[[str, str], list[str] | None] | None = None,
) -> dict[str, Any]:
    """One run: the candidates' true CTR on the users' current state (`truth`: the lists
    the candidate's own surface serves them just before), then `repeats` logged lists per user
    with their clicks, then the off-policy estimate of every candidate from exactly those
    lists (`POST /v1/admin/ope`, with `limits` for its refusal thresholds), from its shadow
    lists (registered with `register`) and by replay. With `shadow_list` (a reader of the
    stored shadow lists), also `shadow_truth`: the exact CTR of the shadow lists themselves."""
    users = world.users
    truth = {name: expected_ctr(client, world, f"sim_{name}", users) for name in candidates}
    started = time.time()
    served = serve(client, world, users, repeats=repeats)
    flush()
    drain()  # attribution (and the users' new state, which the replays roll back)
    out: dict[str, Any] = {"lists": served.lists, "logged_true_ctr": served.ctr, "candidates": {}}
    common = {"surface": SURFACE, "since": started - 1, "boots": boots, "max_lists": served.lists}
    common |= limits or {}  # min_support, min_ess: the API's refusal thresholds
    for name, over in candidates.items():
        got: dict[str, Any] = {"truth": truth[name]}
        if shadow_list is not None:
            got["shadow_truth"] = shadow_ctr(world, served, shadow_list, name)
        for method, which in (("shadow", {"candidate": name}), ("replay", {"overrides": over})):
            if method in methods:
                got[method] = ok(client.post("/v1/admin/ope", json={**common, **which}))
        out["candidates"][name] = got
    return out


def register(client: Client, candidates: dict[str, dict[str, Any]], share: float = 1.0) -> None:
    """Register every candidate for shadow lists on the homepage."""
    for name, over in candidates.items():
        body = {"surface": SURFACE, "overrides": over, "share": share}
        ok(client.put(f"/v1/admin/ope/candidates/{name}", json=body))


# Canary rollout -------------------------------------------------------------------------

CANARY_URL = "/v1/admin/models/ranker/canary"
# The rankers' preferences: the feature (or features) their training labels grow with.
RANKERS = {
    "sim-popular": {"log_popularity": 1.0},
    "sim-better": {"content_score": 1.0, "category_share": 1.0},
    "sim-worse": {"content_score": -1.0, "category_share": -1.0},
}
RANGES = {  # feature -> (low, high) of the synthetic training rows; others in [0, 1]
    "retrieval_rank": (0, 200),
    "cf_rank": (0, 200),
    "nbr_rank": (0, 200),
    "cf_z": (-2, 2),
    "nbr_z": (-2, 2),
    "nbr_recent_z": (-2, 2),
    "content_score": (-0.1, 0.9),
    "log_popularity": (-6, 0),
    "item_age_days": (0, 800),
    "log_history_len": (0, 5),
}


def canary_settings(
    settings: Settings, *, check_s: float = 1.0, latency_ratio: float | None = None
) -> Settings:
    """The homepage ranked by the current ranker, result cache off; the canary judged every
    `check_s` (and, with `latency_ratio`, its p95 latency guardrail set to that)."""
    home = settings.surfaces[SURFACE].with_overrides({"ranker": "current", "cache_ttl_s": 0})
    exp = settings.experiments
    if latency_ratio is not None:
        exp = exp.model_copy(update={"max_latency_ratio": latency_ratio})
    return settings.model_copy(
        update={
            "surfaces": {**settings.surfaces, SURFACE: home},
            "canary": settings.canary.model_copy(update={"check_s": check_s}),
            "experiments": exp,
        }
    )


def save_rankers(registry: Any, *, seed: int = 0) -> None:
    """Three real XGBoost rankers over the serving features (RANKERS); `sim-popular` current."""
    import numpy as np
    import xgboost as xgb

    from core.stores.registry import save_ranker
    from serving.features import CONTEXT_COLUMNS
    from serving.features import FEATURE_NAMES as SERVED

    # The simulated requests name no local hour or device: serving leaves those columns
    # missing, so rows that fill them with noise would teach the rankers splits serving never
    # takes (a ranker over fewer columns than serving computes is served by name).
    context = set().union(*CONTEXT_COLUMNS.values())
    FEATURE_NAMES = tuple(f for f in SERVED if f not in context)
    rng = np.random.default_rng(seed)
    rows, group = 4000, 20
    x = rng.random((rows, len(FEATURE_NAMES)))
    for j, name in enumerate(FEATURE_NAMES):
        low, high = RANGES.get(name, (0, 1))
        x[:, j] = low + (high - low) * x[:, j]
    for version, weights in RANKERS.items():
        util = sum(w * x[:, FEATURE_NAMES.index(f)] for f, w in weights.items())
        label = np.zeros(rows)
        for g in range(0, rows, group):  # graded 0-3 by quartile within each query
            u = util[g : g + group]
            label[g : g + group] = np.searchsorted(np.quantile(u, [0.25, 0.5, 0.75]), u)
        dm = xgb.DMatrix(x, label=label, feature_names=list(FEATURE_NAMES))
        dm.set_group([group] * (rows // group))
        booster = xgb.train({"objective": "rank:pairwise", "max_depth": 3}, dm, 30)
        save_ranker(registry.ranker_dir(version), booster, FEATURE_NAMES, {"simulated": 1.0})
    registry.publish("ranker", "sim-popular", {"published": True})


def canary_round(
    client: Client,
    drain: Callable[[], Any],
    flush: Callable[[], Any],
    world: World,
    version: str,
    *,
    rounds: int,
    share: float = 0.5,
    margin: float = 0.01,
    check_s: float = 1.0,
) -> dict[str, Any]:
    """Start `version` as a canary; the users browse and click, round after round, until the
    API's judge decides (or `rounds` run out)."""
    ok(client.post(CANARY_URL, json={"version": version, "share": share, "margin": margin}))
    time.sleep(1.1)  # serving reads the canary at most once a second
    lists: dict[str, list[float]] = {}
    status: dict[str, Any] = {}
    done = 0
    while done < rounds:
        done += 1
        served = serve(client, world, world.users)
        for variant, (k, exp) in served.by_variant.items():
            got = lists.setdefault(variant, [0.0, 0.0])
            got[0], got[1] = got[0] + k, got[1] + exp
        flush()
        drain()
        time.sleep(check_s + 0.3)  # one judgement on the counts of this round
        status = ok(client.get(CANARY_URL))
        if status["canary"]["state"] != "running":
            break
    return {
        "state": status["canary"]["state"],
        "reason": status["canary"]["reason"],
        # Still running: what the judge sees now (its reason and the arms' counts).
        "now": status.get("now"),
        "rounds": done,
        "lists": {v: int(k) for v, (k, _) in lists.items()},
        "true_ctr": {v: exp / (k * 10) for v, (k, exp) in lists.items()},
    }
