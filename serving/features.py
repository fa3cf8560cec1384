"""Feature assembly for the ranker: one float32 row per (user, candidate), fixed named columns.

`load_inputs` reads what the features need from the catalogue and user state (popularity, the
user's history) plus item content vectors and categories from a process-local cache (misses:
one item-index `get`); `feature_matrix` is pure, so
serving and ranker training compute identical rows. Missing values are NaN (XGBoost learns a
default direction for them).

Why a cache: a Milvus Lite `get` of ~200 ids costs 13-30 ms (measured on ML-100K), more than
the whole retrieval, while content vectors and categories change only on item upserts and
re-indexes (`core.stores.item_cache`: an entry is read again once the item change log says
the item was written). Collaborative scores are not cached: they come with the candidates
from retrieval.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from core.context import UserContext
from core.stores.item_cache import ItemMetaCache
from core.stores.protocols import (
    POPULAR,
    CatalogueState,
    HistorySummary,
    ItemIndex,
    UserState,
)
from core.stores.registry import CFModel
from embeddings.blend import standardise
from serving.retrieval import Candidate


class FeatureSource(Protocol):
    """The stores features read (the serving state has them)."""

    @property
    def items(self) -> ItemIndex: ...

    @property
    def catalogue(self) -> CatalogueState: ...

    @property
    def users(self) -> UserState: ...

    @property
    def item_cache(self) -> ItemMetaCache: ...


FEATURE_NAMES: tuple[str, ...] = (
    "retrieval_rank",  # position in retrieval order (0 = first)
    "from_popular",  # 1 when only the popularity source proposed it
    "cf_rank",  # position by cf score (user cf_vec . item cf_vec) among the candidates
    "cf_z",  # cf score standardised over the candidates
    "nbr_rank",  # position by item-neighbour score from the user's whole history
    "nbr_z",  # that score standardised over the candidates
    "nbr_recent_z",  # item-neighbour score from the last RECENT_NBR items, standardised
    "content_score",  # user content profile . item content_vec
    "content_recent_max",  # max content similarity to the user's last RECENT_SIM items
    "log_popularity",  # log1p(popularity) - log1p(top popularity): <= 0, scale-free
    "item_age_days",  # user's last interaction time - item published_at, in days
    "log_history_len",  # log1p of the user's history length
    "category_share",  # share of the user's last RECENT_CAT items in the item's category
    # Request context: the local hour as a point on the clock (NaN when the request did not
    # say), and the user's own habits at this time of day.
    "hour_sin",
    "hour_cos",
    "hour_category_share",  # category_share over the last items used at this time of day
    # The user's habits on the request's device (NaN when the request or the events did not
    # name devices).
    "device_category_share",  # category_share over the last items used on this device
)
# The columns each request-context parameter changes (the result cache keeps a list per
# value only when the ranker that orders it reads one of them).
CONTEXT_COLUMNS: dict[str, frozenset[str]] = {
    "local_hour": frozenset({"hour_sin", "hour_cos", "hour_category_share"}),
    "device": frozenset({"device_category_share"}),
}
RECENT_SIM = 5
RECENT_NBR = 10
RECENT_CAT = 20
DAY_S = 86_400.0
# "At this time of day": within this many seconds of the request's time of day, compared on
# one clock (UTC) for both, so the user's time zone cancels out.
HOUR_WINDOW_S = 2 * 3600.0
# Feature rows, content vectors and scores are float32 throughout.
_F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class FeatureInputs:
    """Everything `feature_matrix` reads besides the candidates themselves."""

    user_cf: _F32 | None
    user_content: _F32 | None
    history_len: int
    last_ts: float | None  # time of the user's most recent interaction
    recent_content: _F32  # (k, d) content vectors of the last items, most recent first
    recent_categories: Sequence[str | None]  # primary categories of the last items
    item_content: _F32  # (n, d); NaN rows where unknown
    cf_scores: _F32  # (n,) collaborative score per candidate; NaN where unknown
    popularity: _F32  # (n,) popularity score, 0 when absent
    top_popularity: float = 0.0  # the most popular item's score (popularity is relative to it)
    nbr_scores: _F32 | None = None  # (n,) neighbour score from the whole history; NaN unknown
    nbr_recent: _F32 | None = None  # (n,) the same from the last RECENT_NBR items
    local_hour: int | None = None  # the request's local hour
    hour_categories: Sequence[str | None] = ()  # categories of last items used at this hour
    device_categories: Sequence[str | None] = ()  # the same, used on the request's device


def _rank_desc(x: npt.NDArray[np.floating[Any]]) -> _F32:
    """0-based position of each value in descending order; NaN ranks last."""
    order = np.argsort(np.where(np.isnan(x), np.inf, -x), kind="stable")
    ranks = np.empty(len(x), dtype=np.float32)
    ranks[order] = np.arange(len(x), dtype=np.float32)
    return ranks


def _zscore(x: npt.ArrayLike) -> _F32:
    """Standardised over the candidates (NaN stays NaN: XGBoost learns where unknowns go)."""
    return standardise(x).astype(np.float32)


def feature_matrix(cands: Sequence[Candidate], inp: FeatureInputs) -> _F32:
    """The (n_candidates, len(FEATURE_NAMES)) float32 feature matrix."""
    n = len(cands)
    out = np.full((n, len(FEATURE_NAMES)), np.nan, dtype=np.float32)
    if n == 0:
        return out
    col = {name: j for j, name in enumerate(FEATURE_NAMES)}
    out[:, col["retrieval_rank"]] = np.arange(n, dtype=np.float32)
    out[:, col["from_popular"]] = [float(c.sources == ["popular"]) for c in cands]

    if inp.user_cf is not None:
        cf = np.asarray(inp.cf_scores, dtype=np.float32)
        out[:, col["cf_rank"]] = _rank_desc(cf)
        out[:, col["cf_z"]] = _zscore(cf)
    if inp.nbr_scores is not None:
        nbr = np.asarray(inp.nbr_scores, dtype=np.float32)
        out[:, col["nbr_rank"]] = _rank_desc(nbr)
        out[:, col["nbr_z"]] = _zscore(nbr)
    if inp.nbr_recent is not None:
        out[:, col["nbr_recent_z"]] = _zscore(inp.nbr_recent)
    if inp.user_content is not None and inp.item_content.shape[1] == len(inp.user_content):
        out[:, col["content_score"]] = inp.item_content @ inp.user_content.astype(np.float32)
    if len(inp.recent_content) and inp.recent_content.shape[1] == inp.item_content.shape[1]:
        sims = inp.item_content @ inp.recent_content[:RECENT_SIM].T.astype(np.float32)
        with np.errstate(all="ignore"):
            out[:, col["content_recent_max"]] = np.nanmax(
                np.where(np.isnan(sims), -np.inf, sims), axis=1
            )
        out[np.isinf(out[:, col["content_recent_max"]]), col["content_recent_max"]] = np.nan
    # Relative, so a model trained on a smaller time window transfers to the full one.
    top = max(float(inp.top_popularity), float(np.max(inp.popularity)), 0.0)
    out[:, col["log_popularity"]] = np.log1p(np.maximum(inp.popularity, 0.0)) - np.log1p(top)
    if inp.last_ts is not None:
        published = np.asarray(
            [float(c.fields.get("published_at") or 0) for c in cands], dtype=np.float64
        )
        age = (inp.last_ts - published) / DAY_S
        out[:, col["item_age_days"]] = np.where(published > 0, age, np.nan)
    out[:, col["log_history_len"]] = np.log1p(inp.history_len)
    _category_share(out[:, col["category_share"]], cands, inp.recent_categories[:RECENT_CAT])
    _category_share(out[:, col["hour_category_share"]], cands, inp.hour_categories)
    _category_share(out[:, col["device_category_share"]], cands, inp.device_categories)
    if inp.local_hour is not None:
        angle = 2 * np.pi * inp.local_hour / 24
        out[:, col["hour_sin"]], out[:, col["hour_cos"]] = np.sin(angle), np.cos(angle)
    return out


def _category_share(
    column: _F32, cands: Sequence[Candidate], categories: Sequence[str | None]
) -> None:
    """Fill `column` with the share of `categories` that is each candidate's category (left
    NaN when there are none)."""
    known = [c for c in categories if c]
    if known:
        counts: dict[str, int] = {}
        for c in known:
            counts[c] = counts.get(c, 0) + 1
        column[:] = [counts.get(c.fields.get("category") or "", 0) / len(known) for c in cands]


def at_this_hour(times: Sequence[float], at: float) -> list[bool]:
    """Whether each time is within HOUR_WINDOW_S of `at`'s time of day (any day)."""
    out = []
    for t in times:
        d = (t - at) % DAY_S
        out.append(min(d, DAY_S - d) <= HOUR_WINDOW_S)
    return out


def vector_matrix(meta: Mapping[str, tuple[Any, ...]], ids: Sequence[str]) -> _F32:
    """(len(ids), d) content vectors from `ItemMetaCache.get` output; NaN rows where unknown."""
    vecs = [meta[i][0] if i in meta else None for i in ids]
    dim = next((len(v) for v in vecs if v is not None), 1)
    out = np.full((len(ids), dim), np.nan, dtype=np.float32)
    for k, v in enumerate(vecs):
        if v is not None:
            out[k] = v
    return out


def load_inputs(
    stores: FeatureSource,
    ctx: UserContext,
    cands: Sequence[Candidate],
    *,
    cf: CFModel | None = None,
) -> FeatureInputs:
    """Read the feature inputs: popularity, the user's history, cached item metadata
    (`cands` not empty).

    `cf` is the current interaction model; its item neighbours score the candidates against
    `ctx.recent` (the user's history, most recent first).
    """
    ids = [c.item_id for c in cands]
    pop = stores.catalogue.popularity(ids)
    for c, weight in zip(cands, pop, strict=True):
        c.popularity = weight
    top_pop = stores.catalogue.top(POPULAR, 0, 0)
    hist = _history(stores, ctx)
    at = time.time() if ctx.asked_at is None else ctx.asked_at
    # A replay of a past request (or a training row) sees the history as it was then.
    used = [(i, t) for i, t in hist.recent if ctx.asked_at is None or t <= at]
    recent = [i for i, _ in used]
    last_ts = used[0][1] if used else None
    now_ish = at_this_hour([t for _, t in used], at)
    meta = stores.item_cache.get(stores.items, [*ids, *recent])
    at_hour = [i for i, ok in zip(recent, now_ish, strict=True) if ok and i in meta]
    on_device = [i for i in recent if i in meta and hist.devices.get(i) == ctx.device]

    def matrix(which: Sequence[str]) -> _F32:
        return vector_matrix(meta, which)

    recent_sim = [i for i in recent[:RECENT_SIM] if i in meta]
    nbr_all, nbr_recent = neighbour_scores(cf, ctx.recent, ids)
    return FeatureInputs(
        user_cf=ctx.cf_vec,
        user_content=ctx.content_vec,
        history_len=hist.length,
        last_ts=last_ts,
        recent_content=matrix(recent_sim) if recent_sim else np.zeros((0, 1), np.float32),
        recent_categories=[meta[i][1] if i in meta else None for i in recent],
        item_content=matrix(ids),
        cf_scores=np.asarray(
            [c.scores.get("collaborative", np.nan) for c in cands], dtype=np.float32
        ),
        popularity=np.asarray(pop, np.float32),
        top_popularity=float(top_pop[0][1]) if top_pop else 0.0,
        nbr_scores=nbr_all,
        nbr_recent=nbr_recent,
        local_hour=ctx.local_hour,
        hour_categories=[meta[i][1] for i in at_hour],
        device_categories=[meta[i][1] for i in on_device] if ctx.device else [],
    )


def _history(stores: FeatureSource, ctx: UserContext) -> HistorySummary:
    """The history's length and newest RECENT_CAT items: from the context, when it read them
    (a live request: no second round trip), else from the store (a replay or a training row
    as of a past moment, a request naming a device, a context read without its history)."""
    n = ctx.history_len
    if n is None or ctx.asked_at is not None or ctx.device is not None:
        return stores.users.history(
            ctx.user_id, recent_n=RECENT_CAT, devices=ctx.device is not None
        )
    if len(ctx.recent) < min(n, RECENT_CAT):  # the context read fewer (history_exclude)
        return stores.users.history(ctx.user_id, recent_n=RECENT_CAT)
    head = list(zip(ctx.recent[:RECENT_CAT], ctx.recent_ts[:RECENT_CAT], strict=True))
    return HistorySummary(n, head)


def neighbour_scores(
    cf: CFModel | None, history: Sequence[str], ids: Sequence[str]
) -> tuple[_F32 | None, _F32 | None]:
    """Neighbour scores of `ids` from the whole `history` and from its RECENT_NBR first items.

    Items the model does not know score NaN; without neighbours (or history) both are None.
    """
    if cf is None or cf.neighbours is None or not history:
        return None, None
    index = cf.item_index
    hist = [index[i] for i in history if i in index]
    if not hist:
        return None, None
    pos = np.asarray([index.get(i, -1) for i in ids], dtype=np.int64)
    known = pos >= 0
    # Items newer than the model (no index) score NaN; the rest read one summed row each.
    whole = np.full(len(ids), np.nan, dtype=np.float32)
    recent = np.full(len(ids), np.nan, dtype=np.float32)
    head = sum(i in index for i in history[:RECENT_NBR])  # `hist`'s first items
    whole[known], recent[known] = cf.neighbours.scores_and_head(hist, head, pos[known])
    return whole, recent


def build_features(
    stores: FeatureSource,
    ctx: UserContext,
    cands: Sequence[Candidate],
    *,
    cf: CFModel | None = None,
) -> _F32:
    """Feature rows for a user's candidates, as serving and training both compute them."""
    if not cands:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    return feature_matrix(cands, load_inputs(stores, ctx, cands, cf=cf))
