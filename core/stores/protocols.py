"""The read path's stores, as narrow protocols.

Serving sees only these. Each has a real implementation (Milvus or Redis, in this package)
and an in-memory one (`core.stores.memory`); `tests/contract` runs one suite against both, so
a pipeline test on the in-memory stores says something about the real ones.

    ItemIndex        items and their vectors: get by id, filtered ANN, hybrid ANN  (Milvus)
    CatalogueState   what changed about items: tombstones, change stamps, popularity and
                     trending boards                                               (Redis)
    UserState        a user's context (profile, vectors, history, dislikes)        (Redis)
    ResultCache      finished lists: the result cache and the last good lists      (Redis)
    CandidateStore   precomputed candidate sets per user and per context item, and
                     the queue of owners due a refresh                             (Redis)
    RuleSource       the business rules snapshot                                   (Redis)
    ModelSource      the current interaction model and rankers               (Redis + files)
    ImpressionSink   where served lists are logged for attribution                 (Redis)

Every method of a real store raises `core.resilience.DependencyDown` (and nothing from
redis-py or pymilvus) when its server fails: the store boundary maps the errors, so the
pipeline catches one exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from core.context import UserContext
from core.filters import Filter
from core.rules import RuleSnapshot
from core.stores.items import META_FIELDS, SERVING_FIELDS, Hit
from core.stores.registry import CFModel, RankerModel

# Clocks of API hosts and Redis may differ a little: a change stamped up to this long before a
# list was built may not be reflected in it.
CHANGE_MARGIN_S = 5.0


@dataclass(frozen=True)
class ItemMarks:
    """What the catalogue state says about some items: deleted or hidden (tombstoned), and
    when each was last written (seconds; absent if not within the change log's window)."""

    tombstoned: frozenset[str] = frozenset()
    changed_at: Mapping[str, float] = field(default_factory=dict)

    def changed_since(self, built_at: float | Mapping[str, float]) -> set[str]:
        """Ids written at or after `built_at` (one time, or one per id), less the clock margin:
        their metadata in a list built then may no longer hold."""
        out = set()
        for item_id, at in self.changed_at.items():
            since = built_at if isinstance(built_at, float | int) else built_at.get(item_id)
            if since is not None and at >= since - CHANGE_MARGIN_S:
                out.add(item_id)
        return out


@dataclass(frozen=True)
class HistorySummary:
    """The length of a user's history and its most recent items (id, time), newest first;
    `devices`: the device of each recent item's newest use, where the event named one (read
    only when asked for)."""

    length: int
    recent: list[tuple[str, float]]
    devices: Mapping[str, str] = field(default_factory=dict)


POPULAR = "popular"  # the all-time popularity board; trending boards are `trending:<scope>`


def trending_board(scope: str) -> str:
    """The board of a trending scope (`all`, `cat:<category>`, `region:<region>`)."""
    return f"trending:{scope}"


class ItemIndex(Protocol):
    """The items collection: rows by id, and filtered ANN over its vector fields."""

    @property
    def collection(self) -> str:
        """The collection's name (process caches key on it: a re-index switches it)."""
        ...

    def get(
        self, item_ids: Iterable[str], fields: Sequence[str] = META_FIELDS
    ) -> dict[str, dict[str, Any]]:
        """Rows by id (with `item_id`), only the ids that exist."""
        ...

    def read(
        self, item_ids: Iterable[str], fields: Sequence[str] = META_FIELDS
    ) -> dict[str, dict[str, Any]]:
        """`get` for background work (the API's item-cache renewal): outside the breaker and
        the serving timeout, as `iter_rows`. A read of 5,000 ids takes ~0.5 s on Milvus Lite
        at 100k rows, past the request budget, and failures there would open the breaker
        that requests use."""
        ...

    def search(
        self,
        vectors: np.ndarray,
        *,
        field: str = "content_vec",
        filter: Filter | None = None,
        limit: int = 100,
        output_fields: Sequence[str] = SERVING_FIELDS,
    ) -> list[list[Hit]]:
        """Per query vector, the `limit` rows passing `filter` with the largest inner product
        in `field`, best first."""
        ...

    def hybrid_search(
        self,
        vectors: dict[str, np.ndarray],
        weights: dict[str, float],
        *,
        filter: Filter | None = None,
        limit: int = 100,
        output_fields: Sequence[str] = SERVING_FIELDS,
    ) -> list[Hit]:
        """One filtered ANN per vector field, fused by weight; each hit carries its vectors."""
        ...

    def reload(self) -> None:
        """Make the collections searchable again after a server restart (idempotent)."""
        ...

    def ping(self) -> None:
        """A cheap call proving the live collection answers; reloads it if it was released."""
        ...

    def has_attributes(self) -> bool:
        """Whether the live collection stores custom attributes (one created before them
        does not, until a re-index)."""
        ...

    def iter_rows(
        self, fields: Sequence[str], *, batch: int = 1000
    ) -> Iterator[list[dict[str, Any]]]:
        """Every row (with `item_id`), in batches: a full scan, for background work."""
        ...


class CatalogueState(Protocol):
    """Per-item state kept beside the index: tombstones, the change log, popularity boards."""

    def marks(
        self, item_ids: Sequence[str], *, current: bool = True, since: float | None = None
    ) -> ItemMarks:
        """Tombstones and change stamps of these items, in one round trip. `current=False`
        (a later read within one request): a store that keeps them in memory answers from
        there without a round trip; `since` (monotonic seconds, when the request began): a
        read of the catalogue begun at or after it, by any thread, is current enough."""
        ...

    def tombstoned(self, item_ids: Sequence[str]) -> set[str]:
        """Which of these items are deleted or hidden."""
        ...

    def popularity(self, item_ids: Sequence[str]) -> list[float]:
        """All-time interaction weight per item (0 when it has none)."""
        ...

    def top(self, board: str, start: int, stop: int) -> list[tuple[str, float]]:
        """Ranks `start`..`stop` (inclusive) of a board (`POPULAR`, `trending_board(...)`),
        best first, with their scores."""
        ...


class UserState(Protocol):
    """What is known about users, read in one round trip per request."""

    def context(self, user_id: str, *, recent_n: int) -> UserContext:
        """Profile, vectors, cache version, the `recent_n` most recent items and dislikes."""
        ...

    def history(self, user_id: str, *, recent_n: int, devices: bool = False) -> HistorySummary:
        """History length and its `recent_n` most recent items with their times (and their
        devices when `devices`)."""
        ...


# Bulk marks (a refresh of every held set after a re-index or a new model) sort after every
# event's or request's mark (a time): those owners are refreshed first, then the rest.
BULK_MARK = 4e9


def user_owner(user_id: str) -> str:
    return f"u:{user_id}"


def item_owner(item_id: str) -> str:
    return f"i:{item_id}"


@dataclass(frozen=True)
class CandidateSet:
    """Candidates retrieved ahead of requests for one owner (`user_owner`, `item_owner`).

    `sources` maps a retrieval source (collaborative, content_profile, preferences,
    similar_item) to its (item id, score) list, best first. A set is a list of candidates,
    never of permissions: every request applies the hard filters to the items' current
    metadata. `tag` names the models and collection it was built from.
    """

    owner: str
    tag: str
    built_at: float
    sources: Mapping[str, Sequence[tuple[str, float]]]

    def ids(self) -> list[str]:
        return list(dict.fromkeys(i for hits in self.sources.values() for i, _ in hits))


class CandidateStore(Protocol):
    """Candidate sets by owner, and the queue of owners whose sets are due a refresh."""

    def get(self, owners: Sequence[str]) -> dict[str, CandidateSet]:
        """The sets that exist (one round trip)."""
        ...

    def put(self, sets: Sequence[CandidateSet], ttl_s: float) -> None:
        """Store sets, each kept `ttl_s` (one round trip)."""
        ...

    def has(self, owners: Sequence[str]) -> set[str]:
        """Which of these owners hold a set (one round trip, without reading the sets)."""
        ...

    def mark_stale(self, owners: Sequence[str], at: float) -> None:
        """Queue owners for a refresh; an owner already queued keeps its earliest mark, so a
        burst of events costs one refresh (coalescing)."""
        ...

    def mark_each(self, marks: Mapping[str, float]) -> None:
        """`mark_stale` with a mark per owner (a bulk refresh orders owners by it)."""
        ...

    def stale(self, n: int, now: float | None = None) -> list[tuple[str, float]]:
        """Take up to `n` queued owners due by `now` (default: the clock), earliest mark
        first, then bulk marks (`BULK_MARK` on), with their mark. They stay queued until
        `finish` (a refresher that dies leaves them to the next); a mark that arrives
        meanwhile replaces theirs."""
        ...

    def finish(
        self,
        taken: Sequence[tuple[str, float]],
        interval_s: float = 0.0,
        now: float | None = None,
    ) -> int:
        """Dequeue refreshed owners, except those marked again since they were taken: those
        stay queued, due `interval_s` after `now`, and so do owners marked within that
        interval from now on (a busy owner costs one rebuild per interval)."""
        ...

    def queued(self) -> int:
        """How many owners are due a refresh."""
        ...

    def held(self) -> Iterator[tuple[str, float]]:
        """Every owner holding a set, with the seconds its set has left."""
        ...

    def built_for(self) -> str | None:
        """The tag the held sets were last queued for in bulk (None: never)."""
        ...

    def set_built_for(self, tag: str) -> None: ...


class ResultCache(Protocol):
    """Finished lists by key: JSON-able values with a time to live."""

    def get(self, key: str) -> Any | None:
        """The value stored under `key`, or None (absent or expired)."""
        ...

    def put(self, entries: Mapping[str, tuple[Any, float]]) -> None:
        """Store each `key: (value, ttl_s)` (in one round trip)."""
        ...


class RuleSource(Protocol):
    def snapshot(self, now: float | None = None) -> RuleSnapshot:
        """The business rules as of now (never raises once one was loaded)."""
        ...


class ModelSource(Protocol):
    def cf(self) -> CFModel | None:
        """The current interaction model, if one is published."""
        ...

    def ranker(self) -> RankerModel | None:
        """The current ranker, if one is published."""
        ...

    def ranker_at(self, version: str) -> RankerModel | None:
        """A ranker by version, if it exists."""
        ...


class ImpressionSink(Protocol):
    def log(
        self,
        response: Mapping[str, Any],
        ms: float | None = None,
        safety: int | None = None,
        *,
        query: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a served list (never blocks the request, never raises); `query`: what the
        request asked besides user and surface (`RecRequest.query`), for replays."""
        ...
