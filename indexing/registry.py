"""Versioned model artefacts on disk, with the current version published in Redis.

Training writes `<root>/cf/<version>/` and then sets `<prefix>:model:cf`; workers and API
processes compare that key with what they hold and reload when it changes (hot swap, no
restart). Old versions stay on disk for rollback.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from embeddings.cf import ALSModel
from indexing.keys import Keys

log = logging.getLogger(__name__)


@dataclass
class CFModel:
    """A loaded interaction model with its item id -> row index map."""

    version: str
    als: ALSModel
    item_index: dict[str, int]


class ModelRegistry:
    def __init__(self, r: redis.Redis, keys: Keys, root: Path):
        self.r = r
        self.keys = keys
        self.root = Path(root)
        self._lock = threading.Lock()
        self._cf: CFModel | None = None

    def cf_dir(self, version: str) -> Path:
        return self.root / "cf" / version

    @staticmethod
    def new_version() -> str:
        return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{time.time_ns() % 1000:03d}"

    def publish(self, kind: str, version: str, info: dict[str, Any]) -> None:
        """Make `version` current for every process, with its metadata."""
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self.keys.model(kind), version)
        pipe.hset(self.keys.model_versions(kind), version, json.dumps(info))
        pipe.execute()

    def current(self, kind: str) -> str | None:
        v = self.r.get(self.keys.model(kind))
        return v.decode() if v else None

    def versions(self, kind: str) -> dict[str, dict[str, Any]]:
        raw = self.r.hgetall(self.keys.model_versions(kind))
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def cf(self) -> CFModel | None:
        """The current interaction model, reloaded when a newer version is published."""
        version = self.current("cf")
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
                self._cf = CFModel(version, als, index)
                log.info("loaded cf model %s (%d items)", version, len(index))
        return self._cf
