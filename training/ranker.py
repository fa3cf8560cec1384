"""Training the XGBoost LambdaMART re-ranker (`vantage train`, after the interaction model).

Leakage-free by construction: each user's interactions are split (by time for the
"temporal" tune split: the newest ~20% are labels; at random for "random": a random 25%), the
rest (the feature period) are loaded into a temporary namespace on the same servers (item
rows copied from the live collection, interactions through the worker's apply functions, iALS
and item neighbours trained there with the live model's hyper-parameters), and the held-out
items are the labels. For a sample of users the API's own candidate generation
(`serving.recommend.retrieve`) and feature code (`serving.features`) run against
that namespace, so training rows are what serving computes. The model is fitted grouped by
user, checked on held-out users against the order serving would use without it (the blend of
the interaction model's two views, else the retrieval order) on the same kind of holdout it
learned from, saved under `<data_dir>/models/ranker/<version>/` and published; the temporary
namespace is dropped whatever happens.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from core.redis_typed import scored
from core.settings import Settings
from core.stores.items import ITEM_ROW_FIELDS
from core.stores.registry import ModelRegistry, save_ranker
from embeddings.confidence import DEFAULT_RATING_SCHEME, confidence_weight
from indexing.apply import Stores
from indexing.connect import build_stores
from indexing.importer import import_records
from serving.features import FEATURE_NAMES, build_features
from serving.ranking import without_ranker
from serving.recommend import retrieve
from serving.request import RecRequest
from serving.state import ServingState, build_state
from training.interaction import CFParams, is_random_split, train_cf
from training.namespace import drop_namespace, eval_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RankerParams:
    """A small fixed LambdaMART configuration and the training-set construction."""

    # Small trees: a deeper or longer model fitted the feature period's quirks and lost to
    # the retrieval order on held-out users (ML-100K, inner splits only).
    n_estimators: int = 100
    learning_rate: float = 0.05
    max_depth: int = 3
    min_child_weight: float = 5.0
    subsample: float = 0.8
    colsample_bytree: float = 0.9
    label_share: float = 0.2  # each user's most recent share of interactions = labels
    label_split: str = "time"  # "time": labels are the newest; "random": a random share
    random_label_share: float = 0.25  # label share when the tune split is "random" (MS ratio)
    min_interactions: int = 5  # users with fewer only feed the feature period
    # Users whose candidates become training groups. Building a group runs the serving
    # retrieval (~30 ms): 600 keeps `vantage train` on ML-100K under a minute on 2 cores.
    max_users: int = 600
    val_share: float = 0.2  # of those, held out to check the ranker beats the fallback order
    # Validation users also lose a random share of their feature-period items, and the report
    # says how the ranker orders those against retrieval. With `random_holdout_gate` the
    # ranker must not rank them worse (a ranker that learned what comes next, e.g. items like
    # the last few, usually does: on ML-100K's inner split 0.24 vs 0.33). Off by default: the
    # "temporal" tune split declares that what comes next is the goal, and the gate checks
    # the same kind of holdout the ranker is tuned on (use the "random" split to optimise for
    # random held-out items instead).
    random_holdout_share: float = 0.2
    random_holdout_tolerance: float = 0.005
    random_holdout_gate: bool = False
    # The ranker must beat the fallback order by a margin the validation users make credible:
    # a paired t statistic of per-user NDCG@10 differences of at least this (1.64: one-sided
    # 95%). With ~120 validation users a 0.004 lead is noise (ml-latest-small `ms`: such a
    # ranker published on the inner split and then lost to the blend on the test split).
    gate_min_t: float = 1.64
    seed: int = 0


@dataclass
class RankerReport:
    version: str | None
    published: bool = False
    users: int = 0
    groups: int = 0
    rows: int = 0
    positives: int = 0
    val_ndcg10_ranker: float = 0.0
    val_ndcg10_fallback: float = 0.0
    val_random_ndcg10_ranker: float = 0.0
    val_random_ndcg10_fallback: float = 0.0
    val_t: float = 0.0  # paired t statistic of the ranker's per-user lead over the fallback
    total_s: float = 0.0
    stage_s: dict[str, float] = field(default_factory=dict)  # where the time went
    params: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    withdrawn: str | None = None  # the previously published ranker this refusal retired
    namespace: str = ""  # the temporary namespace (dropped when training ends)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class TimeSplit:
    """Feature-period records, label items per user and the time labels start at."""

    features: list[dict[str, Any]]
    labels: dict[str, set[str]]
    label_start: dict[str, float]


def _ts(rec: Mapping[str, Any]) -> float:
    return float(rec.get("timestamp") or 0.0)


def split_by_time(
    records: Iterable[Mapping[str, Any]],
    *,
    label_share: float,
    min_interactions: int,
    random_seed: int | None = None,
) -> TimeSplit:
    """Per user: interactions before the cut time feed features; positives after it are labels.

    The cut is a timestamp, so ties never straddle it: every feature-period interaction of a
    user is strictly older than that user's first label interaction.
    """
    by_user: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for rec in records:
        by_user[str(rec["user_id"])].append(rec)
    features: list[dict[str, Any]] = []
    labels: dict[str, set[str]] = {}
    start: dict[str, float] = {}
    rng = np.random.default_rng(random_seed) if random_seed is not None else None
    for uid, recs in by_user.items():
        recs.sort(key=_ts)
        n_labels = max(1, math.ceil(len(recs) * label_share))
        cut_at = len(recs) - n_labels
        cut_ts = _ts(recs[cut_at]) if len(recs) >= min_interactions else None
        if rng is not None and cut_ts is not None:
            held = set(rng.choice(len(recs), n_labels, replace=False).tolist())
            past = [r for k, r in enumerate(recs) if k not in held]
            future = [r for k, r in enumerate(recs) if k in held]
            cut_ts = min(_ts(r) for r in future)
        else:
            past = [r for r in recs if cut_ts is None or _ts(r) < cut_ts]
            future = [r for r in recs if cut_ts is not None and _ts(r) >= cut_ts]
        positives = {
            str(r["item_id"])
            for r in future
            if confidence_weight(
                str(r["type"]), r.get("value"), rating_scheme=DEFAULT_RATING_SCHEME
            )
            > 0
        }
        if cut_ts is None or not past or not positives:
            features.extend(dict(r) for r in recs)  # too short or all at one time: no labels
            continue
        features.extend(dict(r) for r in past)
        labels[uid] = positives - {str(r["item_id"]) for r in past}
        start[uid] = float(cut_ts)
    labels = {u: items for u, items in labels.items() if items}
    return TimeSplit(features, labels, {u: start[u] for u in labels})


def ndcg_at(scores: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """NDCG@k of one group ordered by `scores` (ties keep the given order)."""
    order = np.argsort(-scores, kind="stable")[:k]
    gains = labels[order] / np.log2(np.arange(2, len(order) + 2))
    ideal = np.sort(labels)[::-1][:k] / np.log2(np.arange(2, min(k, len(labels)) + 2))
    return float(gains.sum() / ideal.sum()) if ideal.sum() > 0 else 0.0


def paired_t(diffs: Iterable[float]) -> float:
    """t statistic of the mean of paired differences (0 without spread or with < 2 pairs)."""
    d = np.asarray(list(diffs), dtype=np.float64)
    if len(d) < 2:
        return 0.0
    sd = d.std(ddof=1)
    if sd < 1e-12:
        return 0.0 if abs(d.mean()) < 1e-12 else math.copysign(1e9, d.mean())
    return round(float(d.mean() / (sd / math.sqrt(len(d)))), 3)


@dataclass
class _Groups:
    users: list[str] = field(default_factory=list)
    x: list[np.ndarray] = field(default_factory=list)
    y: list[np.ndarray] = field(default_factory=list)
    y_random: list[np.ndarray] = field(default_factory=list)  # random-holdout items (val users)
    # Score per candidate of the order serving uses without a ranker (the blend, else the
    # retrieval order): what a ranker has to beat.
    fallback: list[np.ndarray] = field(default_factory=list)


def _build_groups(
    tmp_settings: Settings,
    split: TimeSplit,
    users: list[str],
    limit: int,
    check: bool,
    random_labels: Mapping[str, set[str]],
) -> _Groups:
    """Candidates and features for each user, exactly as serving computes them."""

    state: ServingState = build_state(tmp_settings)
    cfg = tmp_settings.serving
    out = _Groups()
    try:
        for uid in users:
            ctx = state.users.context(uid, recent_n=cfg.history_exclude)
            if check:
                newest = state.users.history(uid, recent_n=1).recent
                if newest and newest[0][1] >= split.label_start[uid]:
                    raise AssertionError(f"user {uid}: feature state reads the label period")
            got = retrieve(state, RecRequest(user_id=uid, surface="homepage", limit=limit), ctx)
            if got.failed:  # rows must be what serving computes: skip a partial candidate set
                log.warning("user %s skipped: sources failed (%s)", uid, got.failed)
                continue
            cands = got.candidates
            if len(cands) < 2:
                continue
            y = np.asarray([c.item_id in split.labels[uid] for c in cands], dtype=np.float32)
            if not y.any():
                continue  # no positive among the candidates: nothing to learn for this user
            out.users.append(uid)
            held = random_labels.get(uid, set())
            out.y_random.append(np.asarray([c.item_id in held for c in cands], np.float32))
            out.x.append(
                build_features(state, ctx, cands, cf=state.models.cf())
            )
            out.y.append(y)
            place = {id(c): k for k, c in enumerate(without_ranker(state, ctx, cands))}
            out.fallback.append(-np.asarray([place[id(c)] for c in cands], dtype=np.float64))
    finally:
        state.close()
    return out


def _fit(groups: _Groups, idx: list[int], params: RankerParams) -> Any:
    import xgboost as xgb

    model = xgb.XGBRanker(
        objective="rank:ndcg",
        n_estimators=params.n_estimators,
        learning_rate=params.learning_rate,
        max_depth=params.max_depth,
        min_child_weight=params.min_child_weight,
        subsample=params.subsample,
        colsample_bytree=params.colsample_bytree,
        tree_method="hist",
        eval_metric="ndcg@10",
        random_state=params.seed,
        n_jobs=2,
    )
    x = np.concatenate([groups.x[i] for i in idx])
    y = np.concatenate([groups.y[i] for i in idx])
    qid = np.concatenate([np.full(len(groups.y[i]), n, dtype=np.int32) for n, i in enumerate(idx)])
    model.fit(x, y, qid=qid)
    return model


def train_ranker(
    settings: Settings,
    stores: Stores,
    records: Iterable[Mapping[str, Any]],
    *,
    params: RankerParams = RankerParams(),
    tune_split: str = "temporal",
    cf_params: CFParams | None = None,
    progress: bool = True,
    publish_if_worse: bool = False,
    check_leakage: bool = True,
) -> RankerReport:
    """Fit the re-ranker on `records` (the same ones the interaction model saw) and publish it.

    `tune_split` is the interaction model's ("temporal" or "random"): with "random" the labels
    are a random share of each user's items and the gate checks on such items only; with
    "temporal" they are the newest items, and the gate also checks randomly held-out items.
    `cf_params` are the live interaction model's hyper-parameters (reused for the
    feature-period model; without them they are selected again on the feature period).
    Without `publish_if_worse`, a ranker that does not beat the fallback order on held-out
    users is saved but not published, and a previously published ranker is withdrawn (the
    blend then orders the surfaces).
    """
    if stores.registry is None:
        raise ValueError("training needs a model registry (Stores.registry)")
    started = time.perf_counter()
    params = _mirror_tune_split(params, tune_split)
    report = RankerReport(version=None, params=asdict(params))
    # 1. split: feature period and labels, the users to learn from, the validation users.
    split = split_by_time(
        records,
        label_share=params.label_share,
        min_interactions=params.min_interactions,
        random_seed=params.seed if params.label_split == "random" else None,
    )
    check_leakage = check_leakage and params.label_split == "time"
    rng = np.random.default_rng(params.seed)
    users = sorted(split.labels)
    if len(users) > params.max_users:
        users = sorted(rng.choice(users, params.max_users, replace=False).tolist())
    if len(users) < 4:
        return _not_trained(report, f"too few users with labels ({len(users)})")
    # Validation users, chosen before loading: a random share of their feature-period
    # positives is kept out of the temporary namespace to check the ranker does no harm there.
    val_users = set(rng.permutation(users)[: max(1, int(len(users) * params.val_share))].tolist())
    split, random_labels = _hold_out_random(split, val_users, params, rng)
    # 2. candidates: serving's own retrieval on the feature period, in a temporary namespace.
    timer = _StageTimer(report)
    groups = _candidate_groups(
        settings,
        stores,
        split,
        users,
        _GroupSpec(cf_params, tune_split, progress, check_leakage, random_labels),
        report,
        timer,
    )
    report.users = len(users)
    report.groups = len(groups.users)
    report.rows = int(sum(len(y) for y in groups.y))
    report.positives = int(sum(y.sum() for y in groups.y))
    if report.groups < 4:
        return _not_trained(
            report, f"too few users with a label among their candidates ({report.groups})"
        )
    val = [i for i, u in enumerate(groups.users) if u in val_users]
    fit = [i for i, u in enumerate(groups.users) if u not in val_users]
    if not val or len(fit) < 2:
        return _not_trained(report, "too few groups to validate the ranker")
    # 3. fit, validated on held-out users against the order without a ranker.
    model = _validate_and_fit(groups, fit, val, params, report)
    timer("fit")
    # 4. gate, then publish (or save only, and withdraw the live ranker).
    report.total_s = round(time.perf_counter() - started, 2)
    _gate_and_publish(stores.registry, model, report, params, bool(random_labels), publish_if_worse)
    return report


def _not_trained(report: RankerReport, reason: str) -> RankerReport:
    report.reason = reason
    log.warning("ranker not trained: %s", reason)
    return report


def _mirror_tune_split(params: RankerParams, tune_split: str) -> RankerParams:
    if not is_random_split(tune_split):
        return params
    # Mirror the tune split: random labels, and the gate checks on those (an extra random
    # holdout would measure the same thing again).
    return replace(
        params,
        label_split="random",
        label_share=params.random_label_share,
        random_holdout_share=0.0,
    )


def _hold_out_random(
    split: TimeSplit, val_users: set[str], params: RankerParams, rng: np.random.Generator
) -> tuple[TimeSplit, dict[str, set[str]]]:
    """Take a random share of the validation users' feature-period positives out of the
    split: the gate checks the ranker on them too (unseen items, not only the newest)."""
    random_labels: dict[str, set[str]] = {}
    if params.random_holdout_share <= 0:
        return split, random_labels
    feature_items: dict[str, list[int]] = defaultdict(list)
    for k, rec in enumerate(split.features):
        positive = confidence_weight(
            str(rec["type"]), rec.get("value"), rating_scheme=DEFAULT_RATING_SCHEME
        )
        if str(rec["user_id"]) in val_users and positive > 0:
            feature_items[str(rec["user_id"])].append(k)
    dropped: set[int] = set()
    for uid, ks in feature_items.items():
        n_hold = int(len(ks) * params.random_holdout_share)
        if n_hold < 1 or len(ks) - n_hold < 2:
            continue
        held = rng.choice(ks, n_hold, replace=False).tolist()
        dropped.update(held)
        random_labels[uid] = {str(split.features[k]["item_id"]) for k in held}
    kept = [r for k, r in enumerate(split.features) if k not in dropped]
    return TimeSplit(kept, split.labels, split.label_start), random_labels


class _StageTimer:
    """Records, per stage name, the seconds since the previous stage ended."""

    def __init__(self, report: RankerReport):
        self.report = report
        self.lap = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.report.stage_s[name] = round(now - self.lap, 2)
        self.lap = now


@dataclass(frozen=True)
class _GroupSpec:
    cf_params: CFParams | None
    tune_split: str
    progress: bool
    check_leakage: bool
    random_labels: dict[str, set[str]]


def _candidate_groups(
    settings: Settings,
    stores: Stores,
    split: TimeSplit,
    users: list[str],
    spec: _GroupSpec,
    report: RankerReport,
    timer: _StageTimer,
) -> _Groups:
    """Load the feature period into a temporary namespace, train the interaction model on
    it, and retrieve each user's candidates there as serving does (dropped afterwards)."""
    # The candidate settings serving uses, minus the result cache; every feature-period item
    # is excluded, as in serving (label items are never in the feature-period history).
    tmp_settings = eval_settings(settings, {"cache_ttl_s": 0.0, "history_exclude": 10_000})
    report.namespace = tmp_settings.redis.key_prefix
    tmp = build_stores(
        tmp_settings,
        embedder=stores.embedder,
        redis_client=stores.redis,
        milvus=stores.items.client,
    )
    cf_version = None
    try:
        _copy_namespace(stores, tmp, {str(r["user_id"]) for r in split.features})
        timer("copy")
        import_records(
            tmp,
            name="ranker-features",
            items=[],
            interactions=split.features,
            n_interactions=len(split.features),
            progress=spec.progress,
        )
        timer("import")
        cf_version = train_cf(
            tmp,
            split.features,
            params=spec.cf_params,
            tune_split=spec.tune_split,
            progress=spec.progress,
        ).version
        timer("cf")
        limit = settings.serving.default_limit
        groups = _build_groups(
            tmp_settings, split, users, limit, spec.check_leakage, spec.random_labels
        )
        timer("groups")
        return groups
    finally:
        drop_namespace(tmp_settings, tmp)
        if cf_version and tmp.registry is not None:
            shutil.rmtree(tmp.registry.cf_dir(cf_version), ignore_errors=True)


def _validate_and_fit(
    groups: _Groups, fit: list[int], val: list[int], params: RankerParams, report: RankerReport
) -> Any:
    """Fit on `fit`, measure on `val` against the order without a ranker (into `report`),
    then fit the published model on every group."""
    model = _fit(groups, fit, params)
    pred = {i: model.predict(groups.x[i]) for i in val}
    fallback_order = {i: groups.fallback[i] for i in val}

    def mean_ndcg(scores: dict[int, np.ndarray], labels: list[np.ndarray]) -> float:
        vals = [ndcg_at(scores[i], labels[i]) for i in val if labels[i].any()]
        return round(float(np.mean(vals)), 4) if vals else 0.0

    report.val_t = paired_t(
        [ndcg_at(pred[i], groups.y[i]) - ndcg_at(fallback_order[i], groups.y[i]) for i in val]
    )
    report.val_ndcg10_ranker = mean_ndcg(pred, groups.y)
    report.val_ndcg10_fallback = mean_ndcg(fallback_order, groups.y)
    report.val_random_ndcg10_ranker = mean_ndcg(pred, groups.y_random)
    report.val_random_ndcg10_fallback = mean_ndcg(fallback_order, groups.y_random)
    # The published model learns from every group, minus the rows of held-out items (they are
    # unseen positives, not negatives).
    for i in val:
        keep = groups.y_random[i] == 0
        groups.x[i], groups.y[i] = groups.x[i][keep], groups.y[i][keep]
    return _fit(groups, [i for i in range(report.groups) if groups.y[i].any()], params)


def _gate_and_publish(
    registry: ModelRegistry,
    model: Any,
    report: RankerReport,
    params: RankerParams,
    random_holdout: bool,
    publish_if_worse: bool,
) -> None:
    version = registry.new_version()
    report.version = version
    better = (
        report.val_ndcg10_ranker > report.val_ndcg10_fallback and report.val_t >= params.gate_min_t
    ) and (
        not (random_holdout and params.random_holdout_gate)
        or report.val_random_ndcg10_ranker
        >= report.val_random_ndcg10_fallback - params.random_holdout_tolerance
    )
    info = {k: v for k, v in report.as_dict().items() if k != "params"}
    save_ranker(
        registry.ranker_dir(version),
        model.get_booster(),
        FEATURE_NAMES,
        {**info, "params": report.params},
    )
    if better or publish_if_worse:
        report.published = True
        registry.publish("ranker", version, {**info, "published": True})
        log.info("ranker %s published: %s", version, info)
        return
    report.reason = (
        "did not beat the order without a ranker (blend, else retrieval) on held-out "
        f"users' held-out items by a credible margin (t {report.val_t} < {params.gate_min_t})"
    ) + (
        ", or ranked their randomly held-out items worse than that order does"
        if params.random_holdout_gate and random_holdout
        else ""
    )
    log.warning("ranker %s saved, not published: %s", version, info)
    # The gate just measured, on today's data, that a ranker trained this way does not beat
    # the order without one: an older ranker has no better claim, so it retires too.
    retired = registry.withdraw("ranker", f"refused successor {version}")
    if retired is not None:
        report.withdrawn = retired
        log.warning("ranker %s withdrawn: the blend orders the surfaces now", retired)


def _copy_namespace(live: Stores, tmp: Stores, users: set[str]) -> None:
    """Item rows (content vectors included, nothing re-embedded) and user profiles."""
    for batch in live.items.iter_rows(ITEM_ROW_FIELDS):
        tmp.items.upsert(batch)
    tmp.mark_written()
    ids = sorted(users)
    for i in range(0, len(ids), 1000):
        chunk = ids[i : i + 1000]
        pipe = live.redis.pipeline(transaction=False)
        for uid in chunk:
            pipe.hget(live.keys.user(uid), "profile")
        profiles = pipe.execute()
        pipe = tmp.redis.pipeline(transaction=False)
        for uid, raw in zip(chunk, profiles, strict=True):
            if raw:
                pipe.hset(tmp.keys.user(uid), "profile", raw)
        pipe.execute()
    # Items deleted or hidden on the live side stay out of training candidates too.
    tomb = scored(live.redis.zrange(live.keys.tombstones, 0, -1, withscores=True))
    if tomb:
        tmp.redis.zadd(tmp.keys.tombstones, dict(tomb))
