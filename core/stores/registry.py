"""Versioned model artefacts on disk, with the current version published in Redis.

Training writes `<root>/<kind>/<version>/` and then sets `<prefix>:model:<kind>` (kinds: `cf`,
the interaction model; `ranker`, the XGBoost re-ranker); workers and API processes compare that
key with what they hold and reload when it changes (hot swap, no restart). Old versions stay on
disk for rollback.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from core.keys import Keys
from core.redis_typed import text, watch
from embeddings.blend import load_blend
from embeddings.ease import ItemNeighbours
from embeddings.ials import ALSModel

log = logging.getLogger(__name__)


@dataclass
class CFModel:
    """A loaded interaction model with its item id -> row index map."""

    version: str
    als: ALSModel
    item_index: dict[str, int]
    # Item-item neighbours in the same item order (artefacts from before they existed: None).
    neighbours: ItemNeighbours | None = None
    # iALS weight of the blended order used without a re-ranker (embeddings.blend); None:
    # the model predates blending or had too little data to choose one.
    blend_cf_weight: float | None = None


@dataclass
class RankerModel:
    """A loaded XGBoost ranker and the feature columns it was trained on, in order."""

    version: str
    booster: Any  # xgboost.Booster
    feature_names: tuple[str, ...]
    # Per feature, the training rows' bin edges and shares (serving.drift); None for rankers
    # saved before drift was measured.
    reference: dict[str, Any] | None = None


RANKER_MODEL_FILE = "model.json"
RANKER_META_FILE = "ranker.json"


SERVED_KINDS = ("cf", "ranker")
# Inside `versions_pinned()` (a request), the versions the read path uses, read once.
_PINNED: ContextVar[dict[str, str | None] | None] = ContextVar("model_versions", default=None)


@contextmanager
def versions_pinned() -> Iterator[None]:
    """Within this block (and threads started with its context) `cf` and `ranker` use the
    versions current at their first use: one Redis read for both, and one version of each
    model for every stage of a request even if a new one is published meanwhile."""
    token = _PINNED.set({})
    try:
        yield
    finally:
        _PINNED.reset(token)


class ModelRegistry:
    """Published model versions (Redis) and their artefacts (files), loaded once per process."""

    def __init__(self, r: redis.Redis, keys: Keys, root: Path):
        self.r = r
        self.keys = keys
        self.root = Path(root)
        self._lock = threading.Lock()
        self._cf: CFModel | None = None
        self._ranker: RankerModel | None = None
        self._ranker_failed: str | None = None
        self._pinned_rankers: dict[str, RankerModel | None] = {}

    def cf_dir(self, version: str) -> Path:
        return self.root / "cf" / version

    def ranker_dir(self, version: str) -> Path:
        return self.root / "ranker" / version

    @staticmethod
    def new_version() -> str:
        return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{time.time_ns() % 1000:03d}"

    def publish(self, kind: str, version: str, info: dict[str, Any]) -> None:
        """Make `version` current for every process, with its metadata."""
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self.keys.model(kind), version)
        pipe.hset(self.keys.model_versions(kind), version, json.dumps(info))
        pipe.execute()

    def withdraw(self, kind: str, reason: str) -> str | None:
        """Stop serving the current `kind` (its artefact and metadata stay); the version withdrawn.

        Every process sees no current version at its next read, as if none had been published.
        """
        while True:
            version = self.current(kind)
            if version is None:
                return None
            raw = self.r.hget(self.keys.model_versions(kind), version)
            info = json.loads(raw) if raw else {}
            info.update(published=False, withdrawn=reason)
            pipe = self.r.pipeline(transaction=True)
            # Only if nobody published meanwhile: a newer version stays current.
            watch(pipe, self.keys.model(kind))
            if pipe.get(self.keys.model(kind)) != version.encode():
                pipe.reset()
                continue
            pipe.multi()
            pipe.delete(self.keys.model(kind))
            pipe.hset(self.keys.model_versions(kind), version, json.dumps(info))
            try:
                pipe.execute()
            except redis.WatchError:
                continue
            return version

    def current(self, kind: str) -> str | None:
        v = self.r.get(self.keys.model(kind))
        return text(v) if v else None

    def served_version(self, kind: str) -> str | None:
        """`current`, or the version pinned for this request (both kinds read at once)."""
        pinned = _PINNED.get()
        if pinned is None or kind not in SERVED_KINDS:
            return self.current(kind)
        if kind not in pinned:
            try:
                raw = self.r.mget([self.keys.model(k) for k in SERVED_KINDS])
                pinned.update(
                    {k: text(v) if v else None for k, v in zip(SERVED_KINDS, raw, strict=True)}
                )
            except redis.RedisError as e:
                # Redis unreachable (or the models' slot moving in a failover): serve the models
                # this process holds; a newer version is picked up once Redis answers.
                log.warning("model versions unreadable (%s); serving the loaded ones", e)
                pinned.update(self._loaded_versions())
        return pinned.get(kind)

    def _loaded_versions(self) -> dict[str, str | None]:
        cf, ranker = self._cf, self._ranker
        return {
            "cf": cf.version if cf is not None else None,
            "ranker": ranker.version if ranker is not None else None,
        }

    def versions(self, kind: str) -> dict[str, dict[str, Any]]:
        raw = self.r.hgetall(self.keys.model_versions(kind))
        return {text(k): json.loads(v) for k, v in raw.items()}

    def cf(self) -> CFModel | None:
        """The current interaction model, reloaded when a newer version is published."""
        version = self.served_version("cf")
        if version is None:
            return None
        if self._cf is not None and self._cf.version == version:
            return self._cf
        with self._lock:
            if self._cf is None or self._cf.version != version:
                path = self.cf_dir(version)
                if not path.is_dir():
                    log.warning("cf model %s is published but %s is missing", version, path)
                    return self._cf
                als = ALSModel.load(path)
                index = {item: i for i, item in enumerate(als.item_ids or [])}
                nbr = None
                if (path / "neighbours").is_dir():
                    nbr = ItemNeighbours.load(path / "neighbours")
                try:
                    blend = load_blend(path)
                except (OSError, ValueError, KeyError):
                    log.exception("cf model %s: unreadable blend weight, fused order kept", version)
                    blend = None
                self._cf = CFModel(version, als, index, nbr, blend)
                log.info("loaded cf model %s (%d items)", version, len(index))
        return self._cf

    def ranker(self) -> RankerModel | None:
        """The current re-ranker, or None when none is published or it cannot be loaded.

        A published version that fails to load is logged once and not retried: serving then
        keeps the retrieval order instead of failing requests.
        """
        version = self.served_version("ranker")
        if version is None or version == self._ranker_failed:
            return None
        if self._ranker is not None and self._ranker.version == version:
            return self._ranker
        with self._lock:
            if self._ranker is not None and self._ranker.version == version:
                return self._ranker
            try:
                self._ranker = load_ranker(self.ranker_dir(version), version)
            except Exception:
                log.exception("ranker %s is published but cannot be loaded", version)
                self._ranker_failed = version
                self._ranker = None
                return None
            log.info("loaded ranker %s (%d features)", version, len(self._ranker.feature_names))
        return self._ranker

    def ranker_at(self, version: str) -> RankerModel | None:
        """A given ranker version (experiments pin one), loaded once; None if it cannot be."""
        hit = self._pinned_rankers.get(version)
        if hit is not None or version in self._pinned_rankers:
            return hit
        model: RankerModel | None
        try:
            model = load_ranker(self.ranker_dir(version), version)
        except Exception:
            log.exception("ranker %s cannot be loaded", version)
            model = None
        with self._lock:
            if len(self._pinned_rankers) >= 8:
                self._pinned_rankers.clear()
            self._pinned_rankers[version] = model
        return model


def save_ranker(
    path: Path,
    booster: Any,
    feature_names: Sequence[str],
    info: dict[str, Any],
    reference: dict[str, Any] | None = None,
) -> None:
    """Write a ranker artefact: the booster as XGBoost JSON plus its feature columns (and
    their training distribution, `reference`, for the drift monitor)."""
    path.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(path / RANKER_MODEL_FILE))
    meta = {"feature_names": list(feature_names), **info}
    if reference is not None:
        meta["feature_reference"] = reference
    (path / RANKER_META_FILE).write_text(json.dumps(meta, indent=1))


def load_ranker(path: Path, version: str) -> RankerModel:
    import xgboost as xgb

    meta = json.loads((path / RANKER_META_FILE).read_text())
    booster = xgb.Booster()
    booster.load_model(str(path / RANKER_MODEL_FILE))
    # One request scores a few hundred rows: threads cost more than they save there.
    booster.set_param({"nthread": 1})
    names = tuple(meta["feature_names"])
    if booster.num_features() != len(names):
        raise ValueError(f"ranker has {booster.num_features()} features, metadata {len(names)}")
    return RankerModel(version, booster, names, meta.get("feature_reference"))
