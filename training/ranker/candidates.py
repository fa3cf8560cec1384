"""Stage 2: the feature period in a temporary namespace, and serving's own candidates there.

Training rows are what serving computes: each user's candidates come from the API's
retrieval (`serving.stages.retrieve`) and their features from `serving.features`, run
against a namespace holding only the feature period (dropped afterwards).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from core.context import UserContext
from core.redis_typed import scored
from core.settings import Settings
from core.stores.catalogue import announce
from core.stores.items import ITEM_ROW_FIELDS
from indexing.apply import Stores
from indexing.connect import build_stores
from indexing.importer import import_records
from serving.features import DAY_S, build_features
from serving.ranking import without_ranker
from serving.request import RecRequest
from serving.stages import retrieve
from serving.state import ServingState, build_state
from training.interaction import CFParams, train_cf
from training.namespace import drop_namespace, eval_settings
from training.ranker.report import RankerReport, StageTimer
from training.ranker.split import TimeSplit

# The package's logger: log lines name `training.ranker`, whichever stage writes them.
log = logging.getLogger("training.ranker")


@dataclass
class Groups:
    """One group per user: candidate features, labels and the order a ranker has to beat."""

    users: list[str] = field(default_factory=list)
    x: list[np.ndarray] = field(default_factory=list)
    y: list[np.ndarray] = field(default_factory=list)
    y_random: list[np.ndarray] = field(default_factory=list)  # random-holdout items (val users)
    # Score per candidate of the order serving uses without a ranker (the blend, else the
    # retrieval order): what a ranker has to beat.
    fallback: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class GroupSpec:
    """How the candidate stage runs: the interaction model to train, and the checks."""

    cf_params: CFParams | None
    tune_split: str
    progress: bool
    check_leakage: bool
    random_labels: dict[str, set[str]]


def candidate_groups(
    settings: Settings,
    stores: Stores,
    split: TimeSplit,
    users: list[str],
    spec: GroupSpec,
    report: RankerReport,
    timer: StageTimer,
) -> Groups:
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
        imported = import_records(
            tmp,
            name="ranker-features",
            items=[],
            interactions=split.features,
            n_interactions=len(split.features),
            progress=spec.progress,
        )
        if imported.skipped:  # rows without their history would teach the ranker nonsense
            raise ValueError(
                f"{imported.skipped} feature-period records failed validation, "
                f"e.g. {imported.errors[:3]}"
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


def _build_groups(
    tmp_settings: Settings,
    split: TimeSplit,
    users: list[str],
    limit: int,
    check: bool,
    random_labels: Mapping[str, set[str]],
) -> Groups:
    """Candidates and features for each user, exactly as serving computes them."""

    state: ServingState = build_state(tmp_settings)
    cfg = tmp_settings.serving
    out = Groups()
    try:
        for uid in users:
            ctx = asked_when_labelled(state.users.context(uid, recent_n=cfg.history_exclude), split)
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
            out.x.append(build_features(state, ctx, cands, cf=state.models.cf()))
            out.y.append(y)
            place = {id(c): k for k, c in enumerate(without_ranker(state, ctx, cands))}
            out.fallback.append(-np.asarray([place[id(c)] for c in cands], dtype=np.float64))
    finally:
        state.close()
    return out


def asked_when_labelled(ctx: UserContext, split: TimeSplit) -> UserContext:
    """The user's context as a request just before their label period (after the last
    feature-period event, which a random split puts later): asked then, with the hour of day
    of that moment as the local hour for half of the users (by id) and none for the others,
    as many requests do not say, so the ranker learns both. Logs carry UTC times only, so the
    UTC hour stands in for the local one (the time-of-day habit feature compares times on one
    clock and needs no time zone). The device is the first label-period event's, when the
    events name devices, again for half of the users (by another bit of the same hash)."""
    at = max([split.label_start[ctx.user_id], *ctx.recent_ts[:1]])
    bits = zlib.crc32(ctx.user_id.encode())
    hour = int(at % DAY_S // 3600) if bits % 2 else None
    device = split.label_device.get(ctx.user_id) if bits >> 1 & 1 else None
    return dataclasses.replace(ctx, asked_at=at, local_hour=hour, device=device)


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
        pipe = tmp.redis.pipeline(transaction=False)
        pipe.zadd(tmp.keys.tombstones, dict(tomb))
        announce(pipe, tmp.keys, [i for i, _ in tomb])
        pipe.execute()
