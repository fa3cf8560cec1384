"""The re-ranker: trained without leakage, published, used by serving, and never a failure."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.main import create_app
from core.keys import Keys
from core.settings import Settings
from core.surfaces import PolicySpec
from indexing.connect import build_stores
from indexing.importer import import_records
from serving.features import build_features
from serving.request import RecRequest
from serving.stages import retrieve
from serving.state import build_state
from tests.conftest import authed
from training.interaction import CFParams, train_cf
from training.ranker import RankerParams, split_by_time, train_ranker

TOPICS = {
    "space": ["Rocket launch", "Moon landing", "Galaxies", "Mars rover", "Saturn", "Black holes"],
    "baking": ["Sourdough", "Croissants", "Chocolate cake", "Baguettes", "Cinnamon rolls", "Pie"],
}
DAY = 86_400


def _data() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    items = [
        {"item_id": f"{t}-{i}", "title": title, "categories": [t], "published_at": 800_000_000}
        for t, titles in TOPICS.items()
        for i, title in enumerate(titles)
    ]
    # Two taste clusters: each fan rates 5 of the 6 items of their topic, one a day.
    rng = np.random.default_rng(0)
    records = []
    for topic in TOPICS:
        for u in range(15):
            for day, i in enumerate(rng.permutation(6)[:5]):
                records.append(
                    {
                        "user_id": f"{topic}-fan-{u}",
                        "item_id": f"{topic}-{i}",
                        "type": "rate",
                        "value": 5.0,
                        "timestamp": 880_000_000 + u * 3600 + day * DAY,
                    }
                )
    return items, records


# The item the two collaborative views of `space-fan-3` disagree on in `_bridged_data`.
BRIDGED = "astro-0"


def _bridged_data() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`_data` plus 20 astronomy fans who each rated "Rocket launch" (space-0) and "Star
    charts" (astro-0), an item no space or baking fan rated.

    `_data` alone cannot show that the blend weight matters: every fan skips exactly one item
    of their topic, so co-occurrence is a function of popularity alone and the topics never
    meet. For a space fan the neighbour score of every baking item is then exactly 0 (ties
    kept in fused order) and their iALS scores follow popularity, equal to the last float32
    bit among the three 14-rater items, as does the fused order: weights 1 and 0 order the
    baking items alike unless float noise (BLAS kernel, threads) happens to split the tie.

    Here `space-fan-3` (who has not seen space-0) meets astro-0 only two hops away:
    history -> space-0 -> astro-0. iALS carries it through space-0's factor, ahead of every
    baking item; EASE has no direct co-occurrence to score and its second-order term is
    negative, so astro-0 falls below the baking items' zeros. Both follow from the models,
    not from rounding, whatever the seed, the solver or the BLAS.
    """
    items, records = _data()
    items.append(
        {
            "item_id": BRIDGED,
            "title": "Star charts",
            "categories": ["astronomy"],
            "published_at": 800_000_000,
        }
    )
    for u in range(20):
        for day, item in enumerate(("space-0", BRIDGED)):
            records.append(
                {
                    "user_id": f"astro-fan-{u}",
                    "item_id": item,
                    "type": "rate",
                    "value": 5.0,
                    "timestamp": 880_000_000 + u * 3600 + day * DAY,
                }
            )
    return items, records


def _ordering_stack(
    settings: Settings,
    embedder: Any,
    tmp_path: Path,
    data: Callable[[], tuple[list[dict[str, Any]], list[dict[str, Any]]]] = _data,
) -> tuple[Settings, Any, list[dict[str, Any]], list[dict[str, Any]]]:
    """`data` (the two topics by default) imported, result cache off and the homepage's policy
    rules 3-8 off, so responses show the ranking stage's order (MMR, exploration and caps would
    reorder it; they have their own tests)."""
    home = settings.surfaces["homepage"].model_copy(update={"policy": PolicySpec()})
    settings = settings.model_copy(
        update={
            "data_dir": tmp_path,
            "serving": settings.serving.model_copy(update={"cache_ttl_s": 0.0}),
            "surfaces": {**settings.surfaces, "homepage": home},
        }
    )
    stores = build_stores(settings, embedder=embedder)
    items, records = data()
    import_records(stores, name="two-topics", items=items, interactions=records, progress=False)
    return settings, stores, items, records


def test_time_split_has_no_leakage() -> None:
    _, records = _data()
    split = split_by_time(records, label_share=0.2, min_interactions=5)
    assert split.labels and set(split.labels) == set(split.label_start)
    newest: dict[str, float] = {}
    for r in split.features:
        newest[r["user_id"]] = max(newest.get(r["user_id"], 0.0), r["timestamp"])
    for uid, start in split.label_start.items():
        assert newest[uid] < start
        assert all(
            r["timestamp"] >= start
            for r in records
            if r["user_id"] == uid and r["item_id"] in split.labels[uid]
        )


def test_training_rows_are_asked_when_the_label_period_starts() -> None:
    from core.context import UserContext
    from training.ranker.candidates import asked_when_labelled

    _, records = _data()
    split = split_by_time(records, label_share=0.2, min_interactions=5)
    asked = [asked_when_labelled(UserContext(u, None, None), split) for u in split.label_start]
    assert all(a.asked_at == split.label_start[a.user_id] for a in asked)
    # A random split leaves later events in the feature period: asked after them.
    uid, start = next(iter(split.label_start.items()))
    late = UserContext(uid, None, None, recent=["x"], recent_ts=[start + 1000])
    assert asked_when_labelled(late, split).asked_at == start + 1000
    # Some rows have a local hour (the UTC hour of that moment), some none, as requests do.
    hours = [a.local_hour for a in asked]
    assert None in hours and {h for h in hours if h is not None} <= set(range(24))
    assert any(
        h == int(split.label_start[a.user_id] % 86400 // 3600)
        for a, h in zip(asked, hours, strict=True)
    )
    assert all(a.device is None for a in asked)  # MovieLens names no devices
    # Events that name devices: a row is asked on the first label-period event's device.
    on = [{**r, "device": "tv" if k % 2 else "mobile"} for k, r in enumerate(records)]
    split = split_by_time(on, label_share=0.2, min_interactions=5)
    assert split.label_device and set(split.label_device) == set(split.label_start)
    devices = [asked_when_labelled(UserContext(u, None, None), split) for u in split.label_start]
    assert None in {a.device for a in devices} and {"tv", "mobile"} & {a.device for a in devices}
    uid = next(a.user_id for a in devices if a.device is not None)
    first = min(
        (r for r in on if r["user_id"] == uid and r["timestamp"] >= split.label_start[uid]),
        key=lambda r: r["timestamp"],
    )
    assert asked_when_labelled(UserContext(uid, None, None), split).device == first["device"]


def test_random_split_holds_out_items_the_features_never_see() -> None:
    _, records = _data()
    split = split_by_time(records, label_share=0.25, min_interactions=5, random_seed=3)
    assert split.labels
    seen: dict[str, set[str]] = {}
    for r in split.features:
        seen.setdefault(r["user_id"], set()).add(r["item_id"])
    for uid, labels in split.labels.items():
        assert labels and not labels & seen[uid]
    # Random, not the newest: some label is older than some feature-period item.
    ts = {(r["user_id"], r["item_id"]): r["timestamp"] for r in records}
    assert any(
        min(ts[(u, i)] for i in labels) < max(ts[(u, i)] for i in seen[u])
        for u, labels in split.labels.items()
    )


def test_ranker_with_random_tune_split_learns_and_gates_on_random_items(
    settings: Settings, embedder: Any, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"data_dir": tmp_path})
    stores = build_stores(settings, embedder=embedder)
    items, records = _data()
    import_records(stores, name="two-topics", items=items, interactions=records, progress=False)
    cf = train_cf(stores, records, tune_split="random", progress=False)
    stores.registry.publish("ranker", "earlier", {"published": True})
    report = train_ranker(
        settings,
        stores,
        records,
        # A gate no ranker passes: this one is refused.
        params=RankerParams(n_estimators=20, max_depth=3, gate_min_t=float("inf")),
        tune_split="random",
        cf_params=CFParams.from_dict(cf.params),
        progress=False,
    )
    assert cf.params["tune_split"] == "random"
    assert report.params["label_split"] == "random" and report.params["label_share"] == 0.25
    assert report.params["random_holdout_share"] == 0.0  # the labels already are random items
    assert report.groups >= 4 and report.version is not None
    # Refused, and the earlier ranker retires with it: the blend serves, nothing is deleted.
    assert not report.published and report.withdrawn == "earlier"
    assert stores.registry.current("ranker") is None
    versions = stores.registry.versions("ranker")
    assert versions["earlier"]["withdrawn"] == f"refused successor {report.version}"
    assert versions["earlier"]["published"] is False
    assert stores.registry.withdraw("ranker", "again") is None  # nothing left to withdraw


def test_ranker_is_trained_published_used_and_degrades(
    settings: Settings, embedder: Any, tmp_path: Path
) -> None:
    settings, stores, _, records = _ordering_stack(settings, embedder, tmp_path)
    train_cf(stores, records, progress=False)
    # check_leakage makes training fail if any user's feature state reads the label period.
    report = train_ranker(
        settings,
        stores,
        records,
        params=RankerParams(n_estimators=20, max_depth=3),
        progress=False,
        publish_if_worse=True,
        check_leakage=True,
    )
    assert report.published and report.groups >= 4 and report.positives > 0
    assert stores.registry.current("ranker") == report.version
    # The temporary namespace is gone: no collections, no keys.
    tmp = report.namespace
    assert tmp and not [c for c in stores.items.client.list_collections() if c.startswith(tmp)]
    assert not list(stores.redis.scan_iter(match=Keys(tmp).scan_pattern))

    user = "space-fan-0"
    state = build_state(settings)
    model = state.models.ranker()
    assert model is not None and model.version == report.version
    ctx = state.users.context(user, recent_n=500)
    cands = retrieve(state, RecRequest(user_id=user, surface="homepage", limit=5), ctx).candidates
    x = build_features(state, ctx, cands, cf=state.models.cf())
    col = {n: j for j, n in enumerate(model.feature_names)}
    assert np.isfinite(x[:, col["nbr_z"]]).all()  # the item neighbours reached the features
    assert {"hour_sin", "hour_cos", "hour_category_share"} <= set(col)  # request context
    expected = dict(
        zip([c.item_id for c in cands], model.booster.inplace_predict(x).tolist(), strict=True)
    )

    def homepage() -> list[dict[str, Any]]:
        with authed(create_app(settings), settings) as c:
            res = c.get("/v1/recommendations", params={"user_id": user, "limit": 5})
            assert res.status_code == 200
            return list(res.json()["items"])

    ranked = homepage()
    assert ranked and all(i["score"] == round(expected[i["item_id"]], 6) for i in ranked)
    scores = [i["score"] for i in ranked]
    assert scores == sorted(scores, reverse=True)
    assert ranked[0]["item_id"].startswith("space-")  # own topic first (the one unseen item)

    # Drift: the ranker carries its features' training distribution, and the rows serving
    # scores are compared with it on /metrics, per feature.
    assert model.reference is not None and set(model.reference) == set(model.feature_names)
    assert all(abs(sum(r["share"]) - 1) < 1e-3 for r in model.reference.values())
    with authed(create_app(settings), settings) as c:
        for _ in range(2):
            for fan in sorted({r["user_id"] for r in records}):
                assert c.get("/v1/recommendations", params={"user_id": fan}).status_code == 200
        text = c.get("/metrics").text
    line = re.compile(r'vantage_ranker_feature_psi\{feature="(\w+)",version="[^"]+"\} (\S+)')
    psi = {m[1]: float(m[2]) for m in line.finditer(text)}
    assert set(psi) == set(model.feature_names), text
    assert all(v >= 0 for v in psi.values())

    # Without a ranker: the blend of the interaction model's views over the retrieved
    # candidates. Items it scores alike (here three with one iALS score) come in the order
    # Milvus returned them, and Milvus returns equal scores in no fixed order: compare the
    # lists with ties in item order.
    stores.redis.delete(stores.keys.model("ranker"))
    plain = _ties_in_order(homepage())
    assert {i for i, _ in plain} == {c.item_id for c in cands[:5]}
    assert [s for _, s in plain] == sorted((s for _, s in plain), reverse=True)

    # A corrupt artefact and a missing one both degrade to the retrieval order, no error.
    bad = stores.registry.new_version() + "-corrupt"
    path = stores.registry.ranker_dir(bad)
    path.mkdir(parents=True)
    (path / "model.json").write_text("{not json")
    (path / "ranker.json").write_text('{"feature_names": ["x"]}')
    for version in (bad, "missing-version"):
        stores.registry.publish("ranker", version, {})
        assert _ties_in_order(homepage()) == plain


def _ties_in_order(items: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """(item, score) by score, items with one score in item order."""
    return sorted(((i["item_id"], i["score"]) for i in items), key=lambda t: (-t[1], t[0]))


def test_without_a_ranker_the_blend_orders_the_homepage(
    settings: Settings, embedder: Any, tmp_path: Path
) -> None:
    settings, stores, items, records = _ordering_stack(
        settings, embedder, tmp_path, data=_bridged_data
    )
    user = "space-fan-3"
    state = build_state(settings)
    ctx = state.users.context(user, recent_n=500)

    def served() -> list[str]:
        with authed(create_app(settings), settings) as c:
            res = c.get("/v1/recommendations", params={"user_id": user, "limit": 12})
            assert res.status_code == 200
            return [i["item_id"] for i in res.json()["items"]]

    def z(x: np.ndarray) -> np.ndarray:
        return (x - x.mean()) / x.std() if x.std() > 1e-12 else np.zeros_like(x)

    def components() -> tuple[list[str], np.ndarray, np.ndarray]:
        # Written out independently of the serving code, over the unseen catalogue (every
        # unseen item is a candidate here): iALS and item-neighbour scores.
        cf = state.models.cf()
        assert cf is not None
        user_ctx = state.users.context(user, recent_n=500)
        unseen = [it["item_id"] for it in items if it["item_id"] not in user_ctx.recent]
        pos = [cf.item_index[i] for i in unseen]
        cf_s = cf.als.item_factors[pos] @ user_ctx.cf_vec
        hist = [cf.item_index[i] for i in user_ctx.recent]
        nbr_s = np.asarray(cf.neighbours.weights[hist].sum(axis=0)).ravel()[pos]
        return unseen, cf_s.astype(np.float64), nbr_s.astype(np.float64)

    def expected(weight: float) -> dict[str, float]:
        # z-scores over the unseen catalogue, weighted as the model says.
        cf = state.models.cf()
        assert cf is not None and cf.blend_cf_weight == weight
        unseen, cf_s, nbr_s = components()
        score = weight * z(cf_s) + (1 - weight) * z(nbr_s)
        return dict(zip(unseen, score.tolist(), strict=True))

    baking = [it["item_id"] for it in items if it["item_id"].startswith("baking-")]
    orders = {}
    for weight in (1.0, 0.0):
        train_cf(stores, records, params=CFParams(blend_cf_weight=weight), progress=False)
        assert ctx.recent  # the user has a history the neighbours read
        # The two views order the candidates differently, by margins far above float noise
        # (z-scores of float32 scores move by ~1e-6): iALS puts the bridged item ahead of
        # every baking item, the neighbours put it behind every one.
        unseen, cf_s, nbr_s = components()
        at = {i: k for k, i in enumerate(unseen)}
        assert BRIDGED in at and all(b in at for b in baking)
        bridged, others = at[BRIDGED], [at[b] for b in baking]
        assert z(cf_s)[bridged] - z(cf_s)[others].max() > 0.5
        assert z(nbr_s)[others].min() - z(nbr_s)[bridged] > 0.05
        # And in the raw scores (~0.1 in size, float32 resolution ~1e-8):
        assert cf_s[bridged] - cf_s[others].max() > 1e-2
        assert nbr_s[others].min() - nbr_s[bridged] > 1e-3
        orders[weight] = served()
        want = expected(weight)
        assert set(orders[weight]) == set(want)
        got = [want[i] for i in orders[weight]]
        assert all(a >= b - 1e-6 for a, b in itertools.pairwise(got))  # ties: any order
    assert orders[1.0] != orders[0.0]  # the weight matters on this data
    # Where it matters: all iALS, the bridged item precedes the baking items; all neighbours,
    # it follows them.
    assert all(orders[1.0].index(BRIDGED) < orders[1.0].index(b) for b in baking)
    assert all(orders[0.0].index(BRIDGED) > orders[0.0].index(b) for b in baking)

    # A model without a blend weight (too little data to choose one) keeps the fused order:
    # scores are then reciprocal-rank sums (all positive, non-increasing), where blend scores
    # are z-scores around 0.
    train_cf(stores, records, params=CFParams(), progress=False)
    assert state.models.cf().blend_cf_weight is None
    with authed(create_app(settings), settings) as c:
        res = c.get("/v1/recommendations", params={"user_id": user, "limit": 12})
    scores = [i["score"] for i in res.json()["items"]]
    assert len(scores) == len(orders[1.0])
    assert all(s > 0 for s in scores) and scores == sorted(scores, reverse=True)
