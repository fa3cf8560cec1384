"""Each policy rule as a small unit (serving.policy), then their order end to end."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from core.rules import Rule
from core.surfaces import PolicySpec
from serving import policy, rerank
from serving.policy import PolicyInputs, diversity, exploration, feedback, freshness
from serving.policy.safety import allowed
from serving.retrieval import Candidate, Constraints, speaks

NOW = 1_800_000_000.0
DAY = 86_400.0


def cand(i: str, **fields: object) -> Candidate:
    return Candidate(
        i, {"category": "", "published_at": 0, **fields}, ["personal"], {"personal": 1.0}
    )


def rule(rule_id: str, **kw: object) -> Rule:
    return Rule.model_validate({"rule_id": rule_id, "created_at": NOW, "updated_at": NOW, **kw})


# Rule 1: safety ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "kw", "ok"),
    [
        ({"maturity": 18}, {"max_maturity": 12}, False),
        ({"maturity": 12}, {"max_maturity": 12}, True),
        ({"status": "hidden"}, {}, False),
        ({"regions": ["FR"]}, {"region": "DE"}, False),
        ({"regions": ["FR"]}, {"region": None}, False),  # unknown region: fail closed
        ({"regions": ["FR"]}, {"region": "FR"}, True),
        ({"language": "fr"}, {"language": "en"}, False),
        ({"language": "en-gb"}, {"language": "en"}, True),
        ({"language": "und"}, {"language": "en"}, True),
        ({"language": "fr"}, {"language": None}, True),
    ],
)
def test_safety(fields: dict, kw: dict, ok: bool) -> None:
    args = {"max_maturity": 18, "region": None, "tombstoned": set(), "exclude": set(), **kw}
    assert allowed(cand("a", **fields), **args) is ok


def test_languages_and_constraints_agree() -> None:
    assert speaks("pt-br", "pt") and speaks("pt", "pt-br") and not speaks("pt", "es")
    cons = Constraints(max_maturity=12, user_language="en")
    assert cons.admits({"language": "en-us", "maturity": 0})
    assert not cons.admits({"language": "de", "maturity": 0})
    assert not cons.admits({"language": "en", "maturity": 18})
    assert 'language like "en-%"' in str(cons.milvus_filter())
    f = cons.milvus_filter()
    assert f.matches({"language": "en-us", "maturity": 0, "status": "active"})
    assert f.matches({"language": "und", "maturity": 0, "status": "active"})
    assert not f.matches({"language": "de", "maturity": 0, "status": "active"})


# Rules 3-4: negative feedback, freshness ---------------------------------------------------


def test_near_neighbours_of_disliked_items_sink() -> None:
    items = np.eye(3, dtype=np.float32)
    items[1] = [0.95, 0.31, 0]
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    neg = np.asarray([[1, 0, 0]], dtype=np.float32)
    pen = feedback.negative_penalties(items, neg, similarity=0.8, penalty=0.3)
    assert pen[0] == pytest.approx(0.3) and pen[1] > 0.25 and pen[2] == 0


def test_freshness_halves_per_half_life() -> None:
    pub = np.asarray([NOW, NOW - 30 * DAY, NOW - 60 * DAY, 0, NOW + DAY])
    b = freshness.freshness_boost(pub, now=NOW, weight=0.2, half_life_days=30)
    assert b == pytest.approx([0.2, 0.1, 0.05, 0, 0])
    assert freshness.is_new(NOW - DAY, now=NOW, new_days=14)
    assert not freshness.is_new(NOW - 20 * DAY, now=NOW, new_days=14)


# Rule 6: diversity ------------------------------------------------------------------------


def _select(limit: int, caps: diversity.Caps, **kw: Any) -> diversity.Selection:
    n = len(kw["categories"])
    args: dict[str, Any] = {"creators": [None] * n, "unproven": [False] * n, **kw}
    return diversity.select(
        np.linspace(1, 0, n), np.full((n, 2), np.nan), limit=limit, lam=1.0, caps=caps,
        window=limit, **args,
    )  # fmt: skip


def test_category_cap_holds_while_the_list_can_be_filled_within_it() -> None:
    got = _select(4, diversity.Caps(category=2), categories=["a"] * 8 + ["b"] * 2)
    assert got.picked == [0, 1, 8, 9] and got.relaxed == []


def test_caps_give_way_in_order_rather_than_leave_the_list_short() -> None:
    # 5 asked, 4 fit the category cap: it gives way (the creator cap had nothing to give).
    got = _select(5, diversity.Caps(category=2, creator=5), categories=["a"] * 8 + ["b"] * 2)
    assert got.picked == [0, 1, 8, 9, 2] and got.relaxed == ["creator", "category"]
    assert got.caps == diversity.Caps()
    # The creator cap gives way before the category cap, and alone when that is enough.
    got = _select(
        4,
        diversity.Caps(category=3, creator=1),
        categories=["a", "a", "b", "b", "c"],
        creators=["x", "x", "x", "y", "x"],
    )
    assert got.picked == [0, 3, 1, 2] and got.relaxed == ["creator"]
    assert got.caps == diversity.Caps(category=3)
    # Fewer candidates than asked: everything, nothing more to relax for.
    assert _select(9, diversity.Caps(category=1), categories=["a"] * 3).picked == [0, 1, 2]


def _uncapped(n: int, limit: int) -> dict[str, Any]:
    """`diversity.select`'s arguments for n items without categories, creators or caps."""
    return dict(
        categories=[None] * n,
        creators=[None] * n,
        unproven=[False] * n,
        caps=diversity.Caps(),
        window=n,
        limit=limit,
    )


def test_mmr_trades_relevance_for_diversity() -> None:
    vecs = np.asarray([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    kw = _uncapped(3, limit=2)
    scores = np.asarray([1.0, 0.9, 0.8])
    assert diversity.select(scores, vecs, lam=1.0, **kw).picked == [0, 1]
    assert diversity.select(scores, vecs, lam=0.7, **kw).picked == [0, 2]


def test_mmr_keeps_near_neighbours_as_close_as_the_users_own_taste() -> None:
    # Items 0 and 1 are similar (0.8); item 2 is unlike both.
    vecs = np.asarray([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
    kw = {**_uncapped(3, limit=2), "lam": 0.7}
    scores = np.asarray([1.0, 0.9, 0.8])
    assert diversity.select(scores, vecs, **kw).picked == [0, 2]
    # A user whose own items are as alike as 0 and 1 keeps them together...
    assert diversity.select(scores, vecs, floor=0.8, **kw).picked == [0, 1]
    # ...a broader one less so: similarity above their floor still costs.
    assert diversity.select(scores, vecs, floor=0.3, **kw).picked == [0, 2]


def test_taste_similarity_is_the_mean_pairwise_similarity() -> None:
    a, b, c = [1.0, 0.0], [0.6, 0.8], [0.0, 1.0]
    vecs = np.asarray([a, b, c, [np.nan, np.nan]], dtype=np.float32)
    want = (0.6 + 0.0 + 0.8) / 3  # a.b, a.c, b.c; the unknown row is left out
    assert rerank.taste_similarity(vecs) == pytest.approx(want, abs=1e-6)
    assert rerank.taste_similarity(vecs[:1]) == 0.0


def test_unproven_items_are_throttled_but_never_leave_a_list_short() -> None:
    def pick(limit: int) -> list[int]:
        return diversity.select(
            np.linspace(1, 0, 6),
            np.full((6, 2), np.nan),
            limit=limit,
            unproven=[True, True, True, False, False, False],
            caps=diversity.Caps(unproven=1),
            lam=1.0,
            categories=[None] * 6,
            creators=[None] * 6,
            window=6,
        ).picked

    assert pick(4) == [0, 3, 4, 5]
    # A young catalogue: only unproven items are left, so they fill the list.
    assert pick(5) == [0, 3, 4, 5, 1]


# Rule 7: exploration ----------------------------------------------------------------------


def test_exploration_fills_lower_slots_with_propensities() -> None:
    exploit, pool = list(range(10)), list(range(100, 110))
    out = exploration.explore(exploit, pool, limit=10, share=0.5, start=4, rng=random.Random(1))
    assert [x for x, _, _ in out[:3]] == [0, 1, 2] and all(p == 1.0 for _, _, p in out[:3])
    explored = [(x, p) for x, e, p in out if e]
    assert explored and all(x >= 100 for x, _ in explored)
    # share / pool size for every explored item (the item-position marginal)
    assert all(p == pytest.approx(0.05) for _, p in explored)
    rank = {x: j for j, x in enumerate(exploit, 1)}
    for pos, (x, e, p) in enumerate(out[3:], 4):  # exploit ranks shift down by those explored
        if not e:
            assert p == pytest.approx(
                exploration.exploit_marginal(rank[x], pos, share=0.5, start=4)
            )
            assert 0 < p <= 0.5
    none = exploration.explore(exploit, pool, limit=10, share=0.0, start=4, rng=random.Random(1))
    assert [x for x, _, _ in none] == exploit


def test_the_exploit_list_does_not_depend_on_the_exploration_share() -> None:
    # Unproven items beyond the throttle: MMR's 30 rows leave the list short and the fill goes
    # on below them. With exploration off the list must be the logging policy's exploit list
    # (what off-policy evaluation compares against), not a list whose caps gave way earlier.
    cands = [cand(f"i{k}") for k in range(60)]
    pop = np.asarray([0.0] * 35 + [5.0] * 25)  # the first 35 rows have no signals yet
    picked = {}
    for share in (0.0, 0.3):
        spec = PolicySpec(new_item_cap=2, exploration_share=share, exploration_start=1)
        trace: dict[str, object] = {}
        run(cands, spec, 10, pop=pop, trace=trace)
        picked[share] = trace["picked"]
    assert picked[0.0] == picked[0.3] == [0, 1, 35, 36, 37, 38, 39, 40, 41, 42]


def test_exploration_rate_matches_share() -> None:
    rng = random.Random(7)
    n = sum(
        e
        for _ in range(2000)
        for _, e, _ in exploration.explore(
            list(range(20)), list(range(100, 150)), limit=20, share=0.1, start=6, rng=rng
        )
    )
    assert n / (2000 * 15) == pytest.approx(0.1, abs=0.01)


# Order of the rules, end to end ---------------------------------------------------------


def run(cands: list[Candidate], spec: PolicySpec, limit: int, **kw: object) -> list[Candidate]:
    n = len(cands)
    inp = PolicyInputs(
        now=NOW,
        seed=3,
        item_vecs=kw.pop("vecs", np.full((n, 2), np.nan, dtype=np.float32)),  # type: ignore[arg-type]
        popularity=kw.pop("pop", np.full(n, 10.0)),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )
    return policy.run(cands, spec, inp, limit=limit)


def test_without_rules_the_ranked_order_stands() -> None:
    cands = [cand(f"i{k}") for k in range(30)]
    out = run(cands, PolicySpec(), 10)
    assert [c.item_id for c in out] == [f"i{k}" for k in range(10)]
    assert all(c.propensity == 1.0 and not c.explored for c in out)


def test_pin_sits_at_its_position_and_boost_bury_move_items() -> None:
    cands = [cand(f"i{k}", category="x" if k == 9 else "y") for k in range(30)]
    pinned = cand("star")
    rules = [
        rule("p", action="pin", item_id="star", position=3),
        rule("b", action="bury", item_id="i0", weight=1.0),
        rule("c", action="boost", category="x", weight=1.0),
    ]
    out = run(cands, PolicySpec(), 10, rules=rules, pinned={"star": pinned})
    ids = [c.item_id for c in out]
    assert ids[2] == "star" and "featured" in out[2].reasons
    assert ids[0] == "i9" and "i0" not in ids and len(ids) == 10


def test_caps_hold_with_exploration_on() -> None:
    cands = [cand(f"i{k}", category="abc"[k % 3], creator_id=f"c{k % 4}") for k in range(120)]
    spec = PolicySpec(category_cap=4, creator_cap=3, exploration_share=0.5, exploration_start=2)
    for seed in range(50):
        inp = PolicyInputs(
            now=NOW, seed=seed, item_vecs=np.full((120, 2), np.nan), popularity=np.ones(120)
        )
        out = policy.run(cands, spec, inp, limit=10)
        cats = [c.fields["category"] for c in out]
        who = [c.fields["creator_id"] for c in out]
        assert max(cats.count(x) for x in set(cats)) <= 4
        assert max(who.count(x) for x in set(who)) <= 3
        assert len(out) == 10  # explored items fit the caps: nothing is dropped afterwards
        assert all(c.propensity is not None for c in out)
        assert all(c.propensity < 1 for c in out if c.explored)


def test_fresh_items_are_explained_and_boosted() -> None:
    cands = [cand(f"i{k}", published_at=NOW - 400 * DAY) for k in range(30)]
    cands[12].fields["published_at"] = NOW - DAY  # inside the window (limit x mmr_depth)
    spec = PolicySpec(freshness_weight=1.0, freshness_half_life_days=30)
    out = run(cands, spec, 5)
    assert out[0].item_id == "i12" and "new" in out[0].reasons


def test_a_list_of_one_category_is_full_and_says_the_cap_gave_way() -> None:
    cands = [cand(f"i{k}", category="shoes") for k in range(12)]
    inp = PolicyInputs(
        now=NOW, seed=3, item_vecs=np.full((12, 2), np.nan, np.float32), popularity=np.full(12, 9.0)
    )
    final = policy.run(cands, PolicySpec(category_cap=3, exploration_share=0.0), inp, limit=10)
    assert [c.item_id for c in final] == [f"i{k}" for k in range(10)]
    assert inp.caps_relaxed == ["category"]


def test_a_focused_user_gets_more_of_their_own_category_than_the_cap() -> None:
    cands = [cand(f"a{k}", category="audio") for k in range(12)] + [
        cand(f"o{k}", category=f"other{k}") for k in range(12)
    ]
    spec = PolicySpec(category_cap=3, exploration_share=0.0)

    def audio(taste: dict[str, int]) -> int:
        inp = PolicyInputs(
            now=NOW,
            seed=3,
            item_vecs=np.full((24, 2), np.nan, np.float32),
            popularity=np.full(24, 9.0),
            taste=taste,
        )
        final = policy.run(cands, spec, inp, limit=10)
        assert len(final) == 10 and inp.caps_relaxed == []
        return sum(c.item_id.startswith("a") for c in final)

    assert audio({}) == 3  # no history: the surface's cap
    assert audio({"audio": 8, "garden": 2}) == 8  # 80% of their history: 8 of 10
    assert audio({"audio": 1, "garden": 9}) == 3  # never below the surface's cap


def _reference_mmr(scores, vecs, lam, limit, cats, who, unp, caps):  # type: ignore[no-untyped-def]
    """Textbook greedy MMR under caps: every step re-checks every item (what `_mmr` must
    pick, however it keeps its bookkeeping)."""
    picked: list[int] = []
    pool = list(np.argsort(-scores, kind="stable"))
    while len(picked) < limit:
        fit = [
            int(i)
            for i in pool
            if diversity.fits_caps(int(i), picked, cats, who, unp, caps) and i not in picked
        ]
        if not fit:
            return picked
        if lam >= 1.0 or not picked:
            picked.append(fit[0])
            continue

        def sim(i: int) -> float:
            if np.isnan(vecs[i]).any():
                return 0.0
            known = [float(vecs[i] @ vecs[j]) for j in picked if not np.isnan(vecs[j]).any()]
            return max([0.0, *known])

        picked.append(max(fit, key=lambda i: lam * scores[i] - (1 - lam) * sim(i)))
    return picked


def test_mmr_picks_as_the_textbook_greedy_does() -> None:
    rng = np.random.default_rng(1)
    for _ in range(300):
        n, limit = int(rng.integers(1, 40)), int(rng.integers(1, 15))
        vecs = rng.normal(size=(n, 6)).astype(np.float32) + rng.normal(size=6).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        vecs[rng.random(n) < 0.2] = np.nan
        cats = [None if rng.random() < 0.1 else f"c{rng.integers(0, 4)}" for _ in range(n)]
        who = [None if rng.random() < 0.2 else f"w{rng.integers(0, 6)}" for _ in range(n)]
        unp = [bool(rng.random() < 0.4) for _ in range(n)]
        scores = np.sort(rng.random(n))[::-1]
        lam = float(rng.choice([0.5, 0.9, 1.0]))
        caps = diversity.Caps(category=2, creator=2, unproven=1, per_category={"c1": 3})
        got = diversity.select(
            scores,
            vecs,
            limit=limit,
            lam=lam,
            categories=cats,
            creators=who,
            unproven=unp,
            caps=caps,
            window=n,
        )
        if not got.relaxed:  # the caps held: the list is MMR's alone
            assert got.picked == _reference_mmr(scores, vecs, lam, limit, cats, who, unp, caps)
