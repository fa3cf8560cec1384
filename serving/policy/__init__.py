"""The policy layer: how the ranked candidates become the final list, rule by rule, in order.

1. **Safety** (`safety`): deleted or hidden items, items above the user's maturity ceiling,
   unavailable in their region or not in their language are dropped, on every path (sources,
   cache, fallbacks, pins).
2. **Seen and disliked** (`safety`, as exclusions): items the user interacted with (within the
   surface's `seen_window_days`, if set) and items they disliked or skipped are dropped.
3. **Negative feedback** (`feedback`): near neighbours of disliked items lose score.
4. **Freshness** (`freshness`): recently published items gain score.
5. **Business rules** (`business`): boosts and buries shift scores.
6. **Diversity** (`diversity`): MMR picks the exploit list under caps per category, creator and
   unproven (new, signal-less) item.
7. **Exploration** (`exploration`): a share of lower positions shows items from outside the
   exploit list, each with its propensity; caps are re-checked.
8. **Pins** (`business`): pinned items are placed at their positions.

Scores: before rule 3 every candidate gets a policy score from its ranked position, 1 for the
first and falling by 1 / (limit x mmr_depth) per position, so rule weights mean the same on
every surface whatever the ranker's scale or the number of candidates: a boost of 0.5 moves
an item half the rules' window up.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from core.rules import Rule
from core.surfaces import PolicySpec
from serving.policy import business, diversity, exploration, feedback, freshness
from serving.policy.safety import HardFilters, allowed, apply_policy, passes
from serving.retrieval import Candidate

__all__ = ["HardFilters", "PolicyInputs", "allowed", "apply_policy", "passes", "run"]

POLICY = "policy"  # key of the policy score in Candidate.scores
# Content vectors are float32.
_F32 = npt.NDArray[np.float32]


@dataclass
class PolicyInputs:
    """What the rules read besides the candidates (loaded by the rerank stage)."""

    now: float
    seed: int  # exploration draws (the recommendation id)
    item_vecs: _F32  # (n, d) content vectors of the window; NaN rows unknown
    popularity: npt.NDArray[np.float64]  # (n,) interaction weight so far
    negative_vecs: _F32 = field(default_factory=lambda: np.zeros((0, 1), np.float32))
    rules: Sequence[Rule] = ()
    pinned: dict[str, Candidate] = field(default_factory=dict)  # safe pinned items
    category_filter: bool = False  # the request asked for one category: no category cap
    # The user's history per category (its most recent items): a category cap never holds a
    # category below its share of that history (calibration: a user who buys only audio
    # gets mostly audio, a broad user a broad list).
    taste: Mapping[str, int] = field(default_factory=dict)
    # The mean pairwise similarity of the user's recent items (0: unknown or too few): with
    # `mmr_taste_floor`, MMR penalises only similarity above it.
    taste_similarity: float = 0.0
    # Filled by `run`: the caps that gave way so the list could be full (debug output).
    caps_relaxed: list[str] = field(default_factory=list)
    # Filled by `run` when given (why-not, replays): the rows MMR picked under the caps that
    # held, in order (`picked`), the caps (`caps`), the rows after exploration (`placed`), the
    # exploration pool (`pool`), the traits.
    trace: dict[str, object] | None = None


def window_size(spec: PolicySpec, limit: int) -> int:
    """How many of the ranked candidates the rules look at: MMR's rows and the exploration
    pool's, whether or not exploration is on. When caps leave MMR's list short, the fill goes
    on through the pool's rows too, so the exploit list must not depend on the exploration
    share: the surface without exploration (an off-policy candidate, `serving.shadow`) picks
    exactly the exploit list its logging policy explored around (with the window cut at MMR's
    rows when exploration was off, the two differed in 12 of 40 simulated lists)."""
    return limit * spec.mmr_depth + spec.exploration_pool


def run(
    ranked: Sequence[Candidate], spec: PolicySpec, inp: PolicyInputs, *, limit: int
) -> list[Candidate]:
    """The final list: rules 3-8 over candidates that already passed rules 1-2."""
    window = list(ranked[: window_size(spec, limit)])
    n = len(window)
    if n == 0 and not inp.pinned:
        return []
    vecs, popularity = inp.item_vecs[:n], inp.popularity[:n]  # rows of the window
    published = np.asarray([float(c.fields.get("published_at") or 0) for c in window])
    rules = list(inp.rules) if spec.rules else []
    score = _policy_scores(window, vecs, published, rules, spec, inp, limit)
    boosted = business.rule_deltas([r for r in rules if r.action == "boost"], window) > 0
    for c, s in zip(window, score, strict=True):
        c.scores[POLICY] = round(float(s), 6)
    traits = _Traits.of(
        window, popularity, spec, category_filter=inp.category_filter, taste=inp.taste, limit=limit
    )
    placed = _place(score, vecs, traits, spec, seed=inp.seed, limit=limit, inp=inp)
    final: list[Candidate] = []
    for i, explored, prop in placed:
        c = window[i]
        c.explored, c.propensity = explored, round(prop, 6)
        if explored:
            c.reasons = [*c.reasons, "picked to explore something new for you"]
        elif boosted[i]:
            c.reasons = [*c.reasons, "featured"]
        if freshness.is_new(published[i], now=inp.now, new_days=spec.new_days):
            c.reasons = [*c.reasons, "new"]
        final.append(c)
    return _pin(final, rules, inp, limit)


def _policy_scores(
    window: list[Candidate],
    vecs: _F32,
    published: npt.NDArray[np.float64],
    rules: Sequence[Rule],
    spec: PolicySpec,
    inp: PolicyInputs,
    limit: int,
) -> npt.NDArray[np.float64]:
    """Rules 3-5: the position score, minus feedback penalties, plus freshness and rules."""
    base = 1.0 - np.arange(len(window), dtype=np.float64) / (limit * spec.mmr_depth)
    score: npt.NDArray[np.float64] = (
        base
        - feedback.negative_penalties(
            vecs,
            inp.negative_vecs,
            similarity=spec.negative_similarity,
            penalty=spec.negative_penalty,
        )
        + freshness.freshness_boost(
            published,
            now=inp.now,
            weight=spec.freshness_weight,
            half_life_days=spec.freshness_half_life_days,
        )
        + business.rule_deltas(rules, window)
    )
    return score


@dataclass(frozen=True)
class _Traits:
    """What the diversity caps count, per window row, and the caps themselves."""

    categories: list[str | None]
    creators: list[str | None]
    unproven: list[bool]
    caps: diversity.Caps
    # What each list asked about holds (exploration asks about one list for a whole pool).
    _held: dict[tuple[int, ...], diversity.Held] = field(default_factory=dict, compare=False)

    @classmethod
    def of(
        cls,
        window: Sequence[Candidate],
        popularity: npt.NDArray[np.float64],
        spec: PolicySpec,
        *,
        category_filter: bool,
        taste: Mapping[str, int] | None = None,
        limit: int = 0,
    ) -> _Traits:
        total = sum((taste or {}).values())
        own = {c: math.ceil(limit * n / total) for c, n in (taste or {}).items()} if total else {}
        return cls(
            categories=[c.fields.get("category") or None for c in window],
            creators=[c.fields.get("creator_id") or None for c in window],
            unproven=[bool(p < spec.new_item_signals) for p in popularity],
            caps=diversity.Caps(
                category=None if category_filter else spec.category_cap,
                creator=spec.creator_cap,
                unproven=spec.new_item_cap,
                per_category=own,
            ),
        )

    def fits(self, i: int, others: Sequence[int]) -> bool:
        """Whether row `i` may join a list holding `others` without breaking a cap."""
        key = tuple(others)
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = diversity.Held.of(
                key, self.categories, self.creators, self.unproven
            )
        return diversity.fits_held(
            i, held, self.categories, self.creators, self.unproven, self.caps
        )


def _place(
    score: npt.NDArray[np.float64],
    vecs: _F32,
    traits: _Traits,
    spec: PolicySpec,
    *,
    seed: int,
    limit: int,
    inp: PolicyInputs,
) -> list[tuple[int, bool, float]]:
    """Rules 6-7: (window row, explored, propensity) per position of the final list (the
    caps relaxed to fill it are appended to `inp.caps_relaxed`; `inp.trace` gets the steps)."""
    chosen = diversity.select(
        score,
        vecs,
        limit=limit,
        lam=spec.mmr_lambda,
        categories=traits.categories,
        creators=traits.creators,
        unproven=traits.unproven,
        caps=traits.caps,
        window=limit * spec.mmr_depth,
        floor=inp.taste_similarity if spec.mmr_taste_floor else 0.0,
    )
    inp.caps_relaxed.extend(chosen.relaxed)
    picked = chosen.picked
    # Exploration keeps to the caps that held, but not to the unproven-item throttle: showing
    # items that have not earned signals yet is what exploration is for (and a throttle that
    # refuses most of the pool would make the logged propensities far from the real ones).
    explore_caps = dataclasses.replace(chosen.caps, unproven=None)
    traits = dataclasses.replace(traits, caps=explore_caps)
    taken = set(picked)
    rest = [int(i) for i in np.argsort(-score, kind="stable") if int(i) not in taken]
    placed = exploration.explore(
        picked,
        rest[: spec.exploration_pool],
        limit=limit,
        share=spec.exploration_share,
        start=spec.exploration_start,
        rng=random.Random(seed),
        fits=traits.fits,
    )
    fits = diversity.within_caps(
        [traits.categories[i] for i, _, _ in placed],
        [traits.creators[i] for i, _, _ in placed],
        [traits.unproven[i] for i, _, _ in placed],
        # A safety net for the caps that held (the unproven cap is a throttle only).
        dataclasses.replace(chosen.caps, unproven=None),
    )
    kept = [p for p, ok in zip(placed, fits, strict=True) if ok]
    if inp.trace is not None:
        inp.trace.update(picked=list(picked), caps=chosen.caps, placed=[i for i, _, _ in kept])
        shown = list(picked[:limit])  # the pool exploration really draws from (exploration.py)
        pool = [i for i in rest[: spec.exploration_pool] if traits.fits(i, shown)]
        inp.trace.update(pool=pool if spec.exploration_share > 0 else [])
        inp.trace.update(traits=traits)
    return kept


def _pin(
    final: list[Candidate], rules: Sequence[Rule], inp: PolicyInputs, limit: int
) -> list[Candidate]:
    pins = business.pin_positions(rules, allowed=inp.pinned)
    if not pins:
        return final[:limit]
    by_id = {c.item_id: c for c in final}
    for item_id in pins:
        c = by_id.get(item_id) or inp.pinned[item_id]
        c.explored, c.propensity = False, 1.0
        if "featured" not in c.reasons:
            c.reasons = [*c.reasons, "featured"]
        by_id[item_id] = c
    ids = business.place_pins([c.item_id for c in final], pins, limit)
    return [by_id[i] for i in ids]
