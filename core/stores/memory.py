"""In-memory stores: the read path's protocols without servers.

They behave like the Milvus and Redis stores (`tests/contract` runs one suite against both),
so pipeline tests run on them in milliseconds; they are also what a test seeds directly
(`upsert`, `tombstone`, `add_history`, ...), where the real stores are written by the worker.
Single-process and thread-safe enough for tests; not for serving.
"""

from __future__ import annotations

import copy
import json
import math
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from core.context import UserContext
from core.domain import UserFields
from core.filters import Filter
from core.rules import RuleSnapshot
from core.stores.candidates import decode_set, encode_set
from core.stores.items import META_FIELDS, SERVING_FIELDS, Hit
from core.stores.protocols import BULK_MARK, POPULAR, CandidateSet, HistorySummary, ItemMarks
from core.stores.registry import CFModel, RankerModel
from core.stores.users import MAX_NEGATIVES

VECTOR_FIELDS = ("content_vec", "cf_vec")


class MemoryItemIndex:
    """`ItemIndex` over a dict of rows; exact inner-product search (Milvus' IP metric)."""

    def __init__(self, collection: str = "memory_items"):
        self._collection = collection
        self._rows: dict[str, dict[str, Any]] = {}

    @property
    def collection(self) -> str:
        return self._collection

    def upsert(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Rows shaped like `core.stores.item_rows.item_row` (the whole row is replaced)."""
        for row in rows:
            r = dict(row)
            for f in VECTOR_FIELDS:
                if f in r:
                    r[f] = np.asarray(r[f], dtype=np.float32)
            self._rows[str(r["item_id"])] = r

    def delete(self, item_ids: Iterable[str]) -> None:
        for i in item_ids:
            self._rows.pop(i, None)

    def has_attributes(self) -> bool:
        return True

    def set_vectors(self, vectors: Mapping[str, npt.ArrayLike], field: str = "cf_vec") -> list[str]:
        """One vector field of existing rows (`ItemStore.set_vectors`); unknown ids are skipped."""
        written = [i for i in vectors if i in self._rows]
        for i in written:
            self._rows[i][field] = np.asarray(vectors[i], dtype=np.float32)
        return written

    def _out(self, row: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"item_id": row["item_id"]}
        for f in fields:
            if f in row:
                v = row[f]
                out[f] = v.tolist() if isinstance(v, np.ndarray) else copy.deepcopy(v)
        return out

    def get(
        self, item_ids: Iterable[str], fields: Sequence[str] = META_FIELDS
    ) -> dict[str, dict[str, Any]]:
        return {i: self._out(self._rows[i], fields) for i in item_ids if i in self._rows}

    read = get  # no breaker, no budget here: the background read is the same read

    def _ranked(self, query: np.ndarray, field: str, where: Filter | None) -> list[Hit]:
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        hits = [
            Hit(i, float(np.dot(row[field], q)), {})
            for i, row in self._rows.items()
            if field in row and (where is None or where.matches(row))
        ]
        return sorted(hits, key=lambda h: -h.score)

    def search(
        self,
        vectors: np.ndarray,
        *,
        field: str = "content_vec",
        filter: Filter | None = None,
        limit: int = 100,
        output_fields: Sequence[str] = SERVING_FIELDS,
    ) -> list[list[Hit]]:
        out = []
        for q in np.atleast_2d(vectors):
            ranked = self._ranked(q, field, filter)[:limit]
            out.append(
                [
                    Hit(h.item_id, h.score, self._out(self._rows[h.item_id], output_fields))
                    for h in ranked
                ]
            )
        return out

    def hybrid_search(
        self,
        vectors: dict[str, np.ndarray],
        weights: dict[str, float],
        *,
        filter: Filter | None = None,
        limit: int = 100,
        output_fields: Sequence[str] = SERVING_FIELDS,
    ) -> list[Hit]:
        """Milvus' WeightedRanker: each field's top `limit`, IP normalised by
        0.5 + atan(x)/pi, summed with the weights (absent from a field's top: 0)."""
        fused: dict[str, float] = {}
        for f, q in vectors.items():
            for h in self._ranked(q, f, filter)[:limit]:
                norm = 0.5 + math.atan(h.score) / math.pi
                fused[h.item_id] = fused.get(h.item_id, 0.0) + weights[f] * norm
        best = sorted(fused.items(), key=lambda kv: -kv[1])[:limit]
        fields = [*output_fields, *vectors]
        return [Hit(i, s, self._out(self._rows[i], fields)) for i, s in best]

    def reload(self) -> None:
        pass

    ping = reload  # nothing to reach or load

    def iter_rows(
        self, fields: Sequence[str], *, batch: int = 1000
    ) -> Iterator[list[dict[str, Any]]]:
        rows = [self._out(r, fields) for r in list(self._rows.values())]
        for k in range(0, len(rows), batch):
            yield rows[k : k + batch]


class MemoryCatalogue:
    """`CatalogueState` in dicts."""

    def __init__(self) -> None:
        self.tombstones: dict[str, float] = {}
        self.changes: dict[str, float] = {}  # item -> last write, seconds
        self.boards: dict[str, dict[str, float]] = {}

    # Writes (the worker's, in the real store).
    def tombstone(self, item_ids: Iterable[str], at: float | None = None) -> None:
        for i in item_ids:
            self.tombstones[i] = at if at is not None else time.time()

    def mark_changed(self, item_ids: Iterable[str], at: float | None = None) -> None:
        for i in item_ids:
            self.changes[i] = at if at is not None else time.time()

    def add(self, board: str, item_id: str, weight: float) -> None:
        scores = self.boards.setdefault(board, {})
        scores[item_id] = scores.get(item_id, 0.0) + weight

    # The protocol.
    def marks(
        self, item_ids: Sequence[str], *, current: bool = True, since: float | None = None
    ) -> ItemMarks:
        return ItemMarks(
            frozenset(self.tombstoned(item_ids)),
            {i: self.changes[i] for i in item_ids if i in self.changes},
        )

    def tombstoned(self, item_ids: Sequence[str]) -> set[str]:
        return {i for i in item_ids if i in self.tombstones}

    def popularity(self, item_ids: Sequence[str]) -> list[float]:
        pop = self.boards.get(POPULAR, {})
        return [pop.get(i, 0.0) for i in item_ids]

    def top(self, board: str, start: int, stop: int) -> list[tuple[str, float]]:
        if board != POPULAR and not (board.startswith("trending:") and len(board) > 9):
            raise ValueError(f"unknown board {board!r}")
        # Redis orders equal scores by member, descending, in ZREVRANGE.
        ranked = sorted(self.boards.get(board, {}).items(), key=lambda kv: (kv[1], kv[0]))
        ranked.reverse()
        return ranked[start : stop + 1] if stop >= 0 else ranked[start:]


@dataclass
class _User:
    profile: UserFields | None = None
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # cvec, cfvec, pvec
    version: int = 0
    history: dict[str, float] = field(default_factory=dict)
    devices: dict[str, str] = field(default_factory=dict)
    negatives: dict[str, float] = field(default_factory=dict)


class MemoryUserState:
    """`UserState` in dicts."""

    def __init__(self) -> None:
        self.users: dict[str, _User] = {}

    def _user(self, user_id: str) -> _User:
        return self.users.setdefault(user_id, _User())

    # Writes (the worker's, in the real store).
    def set_profile(self, user_id: str, profile: UserFields) -> None:
        self._user(user_id).profile = profile

    def set_vector(self, user_id: str, name: str, vec: np.ndarray) -> None:
        """`name`: cvec (content profile), cfvec (collaborative) or pvec (preferences)."""
        self._user(user_id).vectors[name] = np.asarray(vec, dtype=np.float32)

    def add_history(self, user_id: str, item_id: str, at: float, device: str | None = None) -> None:
        u = self._user(user_id)
        if device and at >= u.history.get(item_id, at):  # the newest use that names one
            u.devices[item_id] = device
        u.history[item_id] = max(at, u.history.get(item_id, at))
        u.version += 1

    def add_negative(self, user_id: str, item_id: str, at: float) -> None:
        u = self._user(user_id)
        u.negatives[item_id] = at
        u.version += 1

    # The protocol.
    @staticmethod
    def _newest(scores: Mapping[str, float], n: int) -> list[tuple[str, float]]:
        return sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:n]

    def context(self, user_id: str, *, recent_n: int) -> UserContext:
        u = self.users.get(user_id, _User())
        recent = self._newest(u.history, max(recent_n, 1)) if recent_n > 0 else []
        return UserContext(
            user_id=user_id,
            profile=u.profile.model_copy() if u.profile else None,
            content_vec=u.vectors.get("cvec"),
            cf_vec=u.vectors.get("cfvec"),
            recent=[i for i, _ in recent],
            recent_ts=[t for _, t in recent],
            version=u.version,
            negatives=[i for i, _ in self._newest(u.negatives, MAX_NEGATIVES)],
            pref_vec=u.vectors.get("pvec"),
            history_len=len(u.history) if recent_n > 0 else None,
        )

    def history(self, user_id: str, *, recent_n: int, devices: bool = False) -> HistorySummary:
        u = self.users.get(user_id, _User())
        recent = self._newest(u.history, max(recent_n, 1)) if recent_n > 0 else []
        on = {i: u.devices[i] for i, _ in recent if i in u.devices} if devices else {}
        return HistorySummary(len(u.history), recent, on)


class MemoryResultCache:
    """`ResultCache` in a dict; values are copied through JSON, as Redis stores them."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is None or hit[1] <= time.monotonic():
                self._data.pop(key, None)
                return None
            return json.loads(hit[0])

    def put(self, entries: Mapping[str, tuple[Any, float]]) -> None:
        with self._lock:
            for key, (value, ttl_s) in entries.items():
                self._data[key] = (json.dumps(value), time.monotonic() + max(ttl_s, 0.001))


class MemoryCandidates:
    """`CandidateStore` in dicts."""

    def __init__(self) -> None:
        self.sets: dict[str, tuple[CandidateSet, float]] = {}  # owner -> (set, expires)
        self.stale_marks: dict[str, float] = {}
        self.taken: set[str] = set()
        self.next_due: dict[str, float] = {}  # owner -> when it may be rebuilt again
        self.bulk_tag: str | None = None

    def get(self, owners: Sequence[str]) -> dict[str, CandidateSet]:
        now = time.monotonic()
        return {o: self.sets[o][0] for o in owners if o in self.sets and self.sets[o][1] > now}

    def put(self, sets: Sequence[CandidateSet], ttl_s: float) -> None:
        for s in sets:  # stored as Redis stores it (scores rounded)
            kept = decode_set(s.owner, encode_set(s))
            self.sets[s.owner] = (kept, time.monotonic() + max(ttl_s, 0.001))

    def has(self, owners: Sequence[str]) -> set[str]:
        return set(self.get(owners))

    def mark_stale(self, owners: Sequence[str], at: float) -> None:
        self.mark_each(dict.fromkeys(owners, at))

    def mark_each(self, marks: Mapping[str, float]) -> None:
        for o, at in marks.items():
            at = max(at, self.next_due.get(o, at))
            if o in self.taken:
                if self.stale_marks.get(o) != at:
                    self.stale_marks[o] = at
                    self.taken.discard(o)
            else:
                self.stale_marks[o] = min(at, self.stale_marks.get(o, at))

    def stale(self, n: int, now: float | None = None) -> list[tuple[str, float]]:
        now = time.time() if now is None else now
        ordered = sorted(self.stale_marks.items(), key=lambda kv: (kv[1], kv[0]))
        due = [kv for kv in ordered if kv[1] <= now][:n]
        due += [kv for kv in ordered if kv[1] >= BULK_MARK][: n - len(due)]
        self.taken.update(o for o, _ in due)
        return due

    def finish(
        self,
        taken: Sequence[tuple[str, float]],
        interval_s: float = 0.0,
        now: float | None = None,
    ) -> int:
        now = time.time() if now is None else now
        removed = 0
        for owner, at in taken:
            self.taken.discard(owner)
            if self.stale_marks.get(owner) == at:
                del self.stale_marks[owner]
                removed += 1
            elif owner in self.stale_marks and interval_s > 0:
                self.stale_marks[owner] = max(self.stale_marks[owner], now + interval_s)
            if interval_s > 0:
                self.next_due[owner] = now + interval_s
        self.next_due = {o: t for o, t in self.next_due.items() if t >= now}
        return removed

    def queued(self) -> int:
        return len(self.stale_marks)

    def held(self) -> Iterator[tuple[str, float]]:
        now = time.monotonic()
        return iter([(o, exp - now) for o, (_, exp) in self.sets.items() if exp > now])

    def built_for(self) -> str | None:
        return self.bulk_tag

    def set_built_for(self, tag: str) -> None:
        self.bulk_tag = tag


@dataclass
class StaticRules:
    """`RuleSource` holding one snapshot."""

    current: RuleSnapshot = field(default_factory=lambda: RuleSnapshot(0))

    def snapshot(self, now: float | None = None) -> RuleSnapshot:
        return self.current


@dataclass
class StaticModels:
    """`ModelSource` holding given models (none by default)."""

    cf_model: CFModel | None = None
    rankers: dict[str, RankerModel] = field(default_factory=dict)
    current_ranker: str | None = None

    def cf(self) -> CFModel | None:
        return self.cf_model

    def ranker(self) -> RankerModel | None:
        return self.rankers.get(self.current_ranker) if self.current_ranker else None

    def ranker_at(self, version: str) -> RankerModel | None:
        return self.rankers.get(version)


@dataclass
class RecordingImpressions:
    """`ImpressionSink` that keeps what it is given."""

    logged: list[dict[str, Any]] = field(default_factory=list)

    def log(
        self,
        response: Mapping[str, Any],
        ms: float | None = None,
        safety: int | None = None,
        *,
        query: Mapping[str, Any] | None = None,
    ) -> None:
        self.logged.append(copy.deepcopy(dict(response)))
