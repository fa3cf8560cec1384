"""Narrow wrappers over `MilvusClient` for the items and users collections."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from pymilvus import AnnSearchRequest, MilvusClient, WeightedRanker
from pymilvus.exceptions import MilvusException

from core.filters import Filter
from core.resilience import CircuitBreaker, guarded, map_dependency_errors
from core.stores.schema import RELOAD_TIMEOUT_S, CollectionNames, load_all

T = TypeVar("T")


@dataclass(frozen=True)
class Hit:
    item_id: str
    score: float
    fields: dict[str, Any]


# The item fields an API read returns (everything but vectors and the derived category).
META_FIELDS = (
    "title",
    "description",
    "categories",
    "tags",
    "language",
    "regions",
    "maturity",
    "status",
    "published_at",
    "creator_id",
    "attributes",
    "updated_at",
)
# Every field of a row but the primary key (an upsert replaces the whole row).
ITEM_ROW_FIELDS = ("content_vec", "cf_vec", "category", *META_FIELDS)
# What the read path's filters and policy read of an item.
PING_ID = "~ping"  # no item has it (`ItemStore.ping`)
# A ping's deadline: a hung Milvus must not hold the thread that pings (the popular
# snapshot's, every few seconds) for longer than a readiness probe waits.
PING_TIMEOUT_S = 3.0
SERVING_FIELDS = (
    "category",
    "categories",
    "tags",
    "regions",
    "maturity",
    "status",
    "language",
    "published_at",
    "creator_id",
    "attributes",
)
# Custom attributes (a JSON field): collections created before it have no such field until a
# re-index builds the next one; reads leave it out and writes drop it there.
ATTRIBUTES = "attributes"
FIELDS_TTL_S = 30.0
# Rows per Milvus call of a full scan, whatever batch the caller takes. Milvus Lite scans every
# stored row on each call (~2 µs per row): at 1M items a page of 1,000 cost as much as a page
# of 5,000, so reading 200k rows took 200 calls of ~2.5 s each. A page of 5,000 rows with a
# 384-d vector is ~60 MB of Python objects while it is cut into the caller's batches.
READ_PAGE = 5_000


# Milvus merges a partial upsert (`partial_update=True`) into the stored row from 2.6.2 on;
# Milvus Lite 3 merges every upsert.
PARTIAL_UPDATES_SINCE = (2, 6, 2)


def merges_partial_updates(server_version: str) -> bool:
    """Whether a Milvus of this version (`get_server_version()`) merges partial upserts.
    Unknown version strings count as no (the caller then rewrites whole rows)."""
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", server_version)
    if m is None:
        return False
    version = tuple(int(x) for x in m.groups())
    if server_version.startswith("milvus_lite"):
        return version[0] >= 3
    return version >= PARTIAL_UPDATES_SINCE


class ItemStore:
    """Items collection (through its alias); the read path's `ItemIndex`.

    Serving builds it with its time budget and Milvus circuit breaker: then every read fails
    fast with `DependencyDown` when Milvus is slow or down (the store boundary). The write
    path builds it without, and handles pymilvus' errors itself (retry, dead letters).
    """

    META_FIELDS = META_FIELDS
    SERVING_FIELDS = SERVING_FIELDS

    def __init__(
        self,
        client: MilvusClient,
        names: CollectionNames,
        *,
        timeout_s: float | None = None,
        breaker: CircuitBreaker | None = None,
    ):
        self.client = client
        self.names = names
        # Serving passes its time budget: a slow Milvus fails the call instead of the request.
        self._kw: dict[str, Any] = {"timeout": timeout_s} if timeout_s else {}
        self._breaker = breaker
        self._fields: dict[str, tuple[float, frozenset[str]]] = {}

    def _call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        if self._breaker is None:
            return fn(*args, **kw)
        return guarded(self._breaker, fn, *args, **kw)

    @property
    def collection(self) -> str:
        return self.names.items_alias

    def fields(self, collection: str | None = None) -> frozenset[str]:
        """The fields of the collection (behind the alias: the live one), asked at most every
        FIELDS_TTL_S per name (a re-index may swap in a collection with more)."""
        name = collection or self.collection
        now = time.monotonic()
        hit = self._fields.get(name)
        if hit is not None and now - hit[0] < FIELDS_TTL_S:
            return hit[1]
        desc = self._call(self.client.describe_collection, name, **self._kw)
        got = frozenset(str(f["name"]) for f in desc["fields"])
        self._fields[name] = (now, got)
        return got

    def has_attributes(self, collection: str | None = None) -> bool:
        return ATTRIBUTES in self.fields(collection)

    def _readable(self, fields: Sequence[str], collection: str | None = None) -> list[str]:
        if ATTRIBUTES in fields and not self.has_attributes(collection):
            return [f for f in fields if f != ATTRIBUTES]
        return list(fields)

    def upsert(self, rows: Sequence[dict[str, Any]], *, collection: str | None = None) -> None:
        if rows:
            name = collection or self.collection
            has = self.has_attributes(name)
            fitted = [
                {**r, ATTRIBUTES: r.get(ATTRIBUTES) or {}}
                if has
                else {k: v for k, v in r.items() if k != ATTRIBUTES}
                for r in rows
            ]
            self.client.upsert(name, fitted)

    def delete(self, item_ids: Sequence[str], *, collection: str | None = None) -> None:
        if item_ids:
            self.client.delete(collection or self.collection, ids=list(item_ids))

    @cached_property
    def partial_updates(self) -> bool:
        """Whether this Milvus merges partial upserts (asked once): `set_vectors` needs it."""
        return merges_partial_updates(str(self.client.get_server_version()))

    def set_vectors(
        self,
        vectors: Mapping[str, npt.ArrayLike],
        field: str = "cf_vec",
        *,
        collection: str | None = None,
        attempts: int = 5,
    ) -> list[str]:
        """Write one vector field of existing items; the rest of each row stays as stored.

        A partial update (`upsert(..., partial_update=True)` with rows of the key and `field`):
        nothing else is read or sent, so metadata edited meanwhile is never written back.
        Never creates an item: for a key without a row (never written, or deleted since the
        caller listed it) Milvus would insert a row of that field alone, and the schema makes
        every other field required, so it rejects the whole batch (Milvus Lite 3.2 and Milvus
        2.6+ alike). The keys are then checked (a point read) and the batch is written again
        without the missing ones. Returns the ids written.

        The merge (read the stored row, write it back with the new field) happens in the server
        and is not atomic: a write or delete of the same item landing inside that one call can
        still be undone, as one landing between the read and the upsert of a whole-row rewrite
        could (a narrower window: no round trip, nothing rebuilt client-side).
        """
        if not self.partial_updates:
            raise RuntimeError("partial updates need Milvus 2.6.2 or later (or Milvus Lite 3)")
        name = collection or self.collection
        rows = [
            {"item_id": i, field: np.asarray(v, dtype=np.float32).tolist()}
            for i, v in vectors.items()
        ]
        for attempt in range(attempts):
            if not rows:
                break
            try:
                self.client.upsert(name, rows, partial_update=True)
                return [r["item_id"] for r in rows]
            except MilvusException:
                live = self.get([r["item_id"] for r in rows], (), collection=name, strong=True)
                if len(live) == len(rows) or attempt == attempts - 1:
                    raise  # not (only) a missing row, or deletes kept racing this write
                rows = [r for r in rows if r["item_id"] in live]
        return []

    def get(
        self,
        item_ids: Iterable[str],
        fields: Sequence[str] = META_FIELDS,
        *,
        collection: str | None = None,
        strong: bool = False,
    ) -> dict[str, dict[str, Any]]:
        """Rows by id; `strong` waits for every write acknowledged so far (re-index reads)."""
        ids = list(dict.fromkeys(item_ids))
        if not ids:
            return {}
        kw: dict[str, Any] = {"consistency_level": "Strong"} if strong else dict(self._kw)
        rows = self._call(
            self.client.query,
            collection or self.collection,
            ids=ids,
            output_fields=["item_id", *self._readable(fields, collection)],
            **kw,
        )
        return {r["item_id"]: dict(r) for r in rows}

    def read(
        self, item_ids: Iterable[str], fields: Sequence[str] = META_FIELDS
    ) -> dict[str, dict[str, Any]]:
        ids = list(dict.fromkeys(item_ids))
        if not ids:
            return {}
        with map_dependency_errors("milvus"):
            rows = self.client.query(
                self.collection, ids=ids, output_fields=["item_id", *self._readable(fields)]
            )
        return {r["item_id"]: dict(r) for r in rows}

    def vectors(self, item_ids: Iterable[str], field: str = "content_vec") -> dict[str, np.ndarray]:
        rows = self.get(item_ids, (field,))
        return {i: np.asarray(r[field], dtype=np.float32) for i, r in rows.items()}

    def ids_matching(self, where: Filter, *, limit: int) -> list[str]:
        """Up to `limit` ids of items matching a filter (in no particular order)."""
        rows = self._call(
            self.client.query,
            self.collection,
            filter=str(where),
            output_fields=["item_id"],
            limit=limit,
            **self._kw,
        )
        return [str(r["item_id"]) for r in rows]

    def search(
        self,
        vectors: np.ndarray,
        *,
        field: str = "content_vec",
        filter: Filter | None = None,
        limit: int = 100,
        output_fields: Sequence[str] = SERVING_FIELDS,
    ) -> list[list[Hit]]:
        """Batched ANN search; one list of hits per query vector."""
        res = self._call(
            self.client.search,
            self.collection,
            data=np.atleast_2d(vectors).astype(np.float32).tolist(),
            anns_field=field,
            filter=str(filter or ""),
            limit=limit,
            output_fields=self._readable(output_fields),
            search_params={"metric_type": "IP"},
            **self._kw,
        )
        # pymilvus Hit.id is the primary key whatever the field is called.
        return [
            [Hit(str(h.id), float(h["distance"]), dict(h.get("entity") or {})) for h in hits]
            for hits in res
        ]

    def hybrid_search(
        self,
        vectors: dict[str, np.ndarray],
        weights: dict[str, float],
        *,
        filter: Filter | None = None,
        limit: int = 100,
        output_fields: Sequence[str] = SERVING_FIELDS,
    ) -> list[Hit]:
        """One filtered ANN per vector field, fused by Milvus with a weighted ranker.

        The vectors of each hit are returned too, so every space's own score is known.
        """
        fields = list(vectors)
        reqs = [
            AnnSearchRequest(
                data=[np.asarray(vectors[f], dtype=np.float32).tolist()],
                anns_field=f,
                param={"metric_type": "IP"},
                limit=limit,
                expr=str(filter) if filter else None,
            )
            for f in fields
        ]
        res = self._call(
            self.client.hybrid_search,
            self.collection,
            reqs,
            WeightedRanker(*(weights[f] for f in fields)),
            limit=limit,
            output_fields=[*self._readable(output_fields), *fields],
            **self._kw,
        )
        return [Hit(str(h.id), float(h["distance"]), dict(h.get("entity") or {})) for h in res[0]]

    def reload(self) -> None:
        """Load the collections again (a restarted Milvus may come back with them released).

        Not through the breaker: this is how it recovers. While the breaker is open its one
        trial call would go to whichever request comes first, and searches on released
        collections keep failing, so a reload waiting for a trial would rarely get one."""
        with map_dependency_errors("milvus"):
            load_all(self.client, self.names, timeout_s=RELOAD_TIMEOUT_S)

    def iter_rows(
        self, fields: Sequence[str], *, batch: int = 1000, collection: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Every row of the collection, in batches of `batch` (a full scan, for training,
        re-index and the API's item cache), read READ_PAGE rows per Milvus call."""
        # Milvus Lite returns no MVCC timestamp to an iterator, which then uses the client's
        # clock: a warning per scan, never actionable. Set here, not with the other loggers:
        # pymilvus' own logging set-up, run when it is imported, resets its loggers' levels.
        logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
        it = self.client.query_iterator(
            collection or self.collection,
            batch_size=max(batch, READ_PAGE),
            filter="",
            output_fields=["item_id", *self._readable(fields, collection)],
        )
        try:
            pending: list[Any] = []
            while rows := it.next():
                pending.extend(rows)
                while len(pending) >= batch:
                    yield [dict(r) for r in pending[:batch]]
                    del pending[:batch]
            if pending:
                yield [dict(r) for r in pending]
        finally:
            it.close()

    def flush(self, *, collection: str | None = None) -> None:
        """Seal written rows. Milvus Lite searches unflushed rows several times slower."""
        self.client.flush(collection or self.collection)

    def ping(self) -> None:
        """A query by primary key of an id no item has: proves the live collection answers,
        at the cost of a key lookup (a count scans every row on Milvus Lite). Outside the
        breaker, with its own deadline (`PING_TIMEOUT_S`): readiness must see Milvus return,
        and a restarted Milvus comes back with its collections released: then they are
        loaded again (`reload`, idempotent) and asked once more."""
        try:
            self._ping()
        except MilvusException:
            self.reload()
            self._ping()

    def _ping(self) -> None:
        self.client.query(
            self.collection, ids=[PING_ID], output_fields=["item_id"], timeout=PING_TIMEOUT_S
        )

    def count(self, *, collection: str | None = None) -> int:
        """Live rows (deletes excluded), as of every acknowledged write."""
        rows = self.client.query(
            collection or self.collection,
            filter="",
            output_fields=["count(*)"],
            consistency_level="Strong",
        )
        return int(rows[0]["count(*)"]) if rows else 0
