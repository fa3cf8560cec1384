"""Impressions: every served list, logged off the request path for attribution and CTR.

`log()` only appends a compact copy of a response to a bounded in-process queue (a deque: no
lock, no wake-up of another thread on the request path); a daemon thread wakes every
`flush_ms`, and writes what is queued in batches, one Redis pipeline per batch:

- `keys.impressions(shard)` (a stream per shard of lists, MAXLEN ~) and `keys.rec_info(id)`
  (a hash per list, expiring after the attribution window): the served-list record of
  `core/served_list.py`, which the worker's attribution script reads to count clicks on a
  list, from the user it was served to;
- `keys.surface_stats(shard)`: hash `imp|<surface>|<source>|<variant>` += 1 per source of each
  item, and `imp|<surface>|*|<variant>` += 1 per item (so a surface's CTR counts an item once);
  the same in `keys.surface_stats_hour(shard, hour)` for the hour the list was served;
- `keys.served_items_hour(surface, hour)`: a HyperLogLog of the distinct items served (the
  catalogue coverage gauge of `/metrics`).

The counters (the last two) are summed in process and written once every `counts_ms` (a
second by default), and at once by `flush()` and `stop()`: see `serving/impression_counts.py`.

Impressions are best-effort analytics, not events: when the queue is full (Redis slower than
traffic) or a batch fails, the lists are dropped, never retried, and the loss is counted in
`vantage_impressions_dropped_total` (reason `counts` when only a window's counters were lost:
the lists are written, their impressions not counted). A request never waits for any of this;
clicks on a lost list are simply not attributed.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import redis
from redis.typing import EncodableT, FieldT

from core.keys import RECS_SHARDS, Keys
from core.served_list import ServedItem, ServedList, stats_name
from core.stores.erasures import ErasureRecords
from serving import metrics
from serving.impression_counts import ListCounts

log = logging.getLogger(__name__)

MAX_ITEMS = 1000  # a list is at most serving.max_limit long; this bounds a malformed one
MAX_SOURCES = 16
QUERY_FIELDS = (
    *("limit", "item_id", "category", "language", "filter"),
    *("device", "region", "local_hour", "profiling"),
)
INT_FIELDS = ("limit", "local_hour")
MAX_QUERY_VALUE = 256  # ids, categories, languages, devices, regions
MAX_FILTER = 2000  # a filter expression's own bound (core/expr.py)
_MIN_WAIT_S = 0.005  # the writer's shortest sleep (flush_ms=0 must not spin)
_WARN_EVERY_S = 10.0  # one warning per outage period, not one per batch


def _propensity(value: Any) -> float | None:
    return None if value is None else round(float(value), 6)


def _source_names(sources: Any) -> tuple[str, ...]:
    """An item's sources as `stats_name`s, each once, at most `MAX_SOURCES` of them."""
    if not sources:
        return ()
    given = tuple(sources[:MAX_SOURCES])
    try:
        return _names_of(given)  # a few distinct source sets: named once each
    except TypeError:  # an unhashable name
        return _names(given)


def _names(given: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(stats_name(s, "unknown") for s in given))


_names_of = functools.lru_cache(maxsize=1024)(_names)


def to_record(
    response: Mapping[str, Any],
    *,
    at: float | None = None,
    ms: float | None = None,
    safety: int | None = None,
    query: Mapping[str, Any] | None = None,
) -> ServedList | None:
    """The served-list record of a response (None when it has no id); `ms`: how long the
    request took; `query`: what it asked besides user and surface."""
    rec_id = response.get("recommendation_id")
    raw = response.get("items") or []
    if not rec_id:
        return None
    items: list[ServedItem] = []
    seen: set[str] = set()
    for n, it in enumerate(raw[:MAX_ITEMS], 1):
        item_id = str(it["item_id"])
        if item_id in seen:  # counted once even if a list ever repeats an item
            continue
        seen.add(item_id)
        position = it.get("position")
        items.append(
            ServedItem(
                item_id,
                _source_names(it.get("sources")),
                int(position or n),  # 0 = not set by the pipeline: list order
                bool(it.get("explored", False)),
                _propensity(it.get("propensity")),
            )
        )
    return ServedList(
        id=str(rec_id),
        user=str(response.get("user_id", "")),
        surface=stats_name(response.get("surface"), "unknown"),
        variant=stats_name(response.get("variant"), "default"),
        t=round(time.time() if at is None else at, 3),
        cached=bool(response.get("cached", False)),
        degraded=bool(response.get("degraded", False)),
        items=tuple(items),
        ms=None if ms is None else round(float(ms), 3),
        safety=None if safety is None else int(safety),
        query=_query(query),
    )


def _query(query: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The request's replayable part, bounded (ids and filters are short strings)."""
    if not query:
        return None
    out: dict[str, Any] = {}
    for k in QUERY_FIELDS:
        v = query.get(k)
        if k in INT_FIELDS:
            if isinstance(v, int) and not isinstance(v, bool):
                out[k] = v
        elif isinstance(v, str):
            out[k] = v[: MAX_FILTER if k == "filter" else MAX_QUERY_VALUE]
    return out or None


class ImpressionLogger:
    """Writes served lists to Redis from a daemon thread (see the module docstring)."""

    def __init__(
        self,
        redis_client: redis.Redis,
        keys: Keys,
        *,
        max_queue: int = 10_000,
        flush_ms: int = 50,
        ttl_s: int = 86_400,
        stream_maxlen: int = 1_000_000,
        batch_max: int = 256,
        counts_ms: int = 1000,
    ):
        self.redis = redis_client
        self.keys = keys
        self.flush_s = flush_ms / 1000
        self.ttl_s = ttl_s
        self.stream_maxlen = stream_maxlen
        self.batch_max = batch_max
        self.max_queue = max_queue
        self._pending: deque[ServedList] = deque()
        self._busy = False  # the thread has taken lists it has not written yet
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_warn = 0.0
        self.counts_s = counts_ms / 1000
        self._counts = ListCounts()  # of the lists written since the counters were
        self._counts_due = 0.0  # when the writer writes the counters next (monotonic)
        self._counts_asked = 0  # `flush()` calls so far (each wants the counters written)
        self._counts_done = 0  # the calls whose lists' counters are written
        self._counts_shard = 0  # the shard the next window's counters go to

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._stop.is_set()

    def start(self) -> None:
        """Start the writer thread (once; until then `log()` does nothing)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="impressions", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Write what is queued and end the thread; what is left after `timeout_s` is lost."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout_s)
        self._thread = None

    def log(
        self,
        response: Mapping[str, Any],
        ms: float | None = None,
        safety: int | None = None,
        *,
        query: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue a response as `recommend()` returns it (`ms`: how long it took; `safety`: the
        candidates the safety rule dropped, None for a cached list; `query`: what the request
        asked, kept for replays); never blocks, never raises."""
        if not self.running:  # e.g. the evaluation harness: no thread, nothing kept
            return
        try:
            record = to_record(response, ms=ms, safety=safety, query=query)
        except Exception:
            log.exception("impression not logged: malformed response")
            metrics.IMPRESSIONS_DROPPED.labels("invalid").inc()
            return
        if record is None:
            return
        if len(self._pending) >= self.max_queue:
            metrics.IMPRESSIONS_DROPPED.labels("queue_full").inc()
            return
        self._pending.append(record)  # atomic: no lock taken, no thread woken

    def _not_erased(self, batch: Sequence[ServedList]) -> Sequence[ServedList]:
        """The lists of `batch` but those served before their user's erasure was asked for:
        a list queued before an erasure and written after it would bring the user's id back.
        One read per batch; a closer look only when an erasure was asked for since the batch's
        oldest list."""
        if not batch:
            return batch
        records = ErasureRecords(self.redis, self.keys)
        latest = records.latest()
        if latest is None or latest < min(rec.t for rec in batch):
            return batch
        asked = records.requested_at({rec.user for rec in batch})
        kept = [rec for rec in batch if rec.t > asked.get(rec.user, -1.0)]
        if len(kept) < len(batch):
            gone = [rec for rec in batch if rec.t <= asked.get(rec.user, -1.0)]
            pipe = self.redis.pipeline(transaction=False)
            for rec in gone:  # a paged list's later pages: written when it was served
                pipe.delete(self.keys.pages(rec.id))
            pipe.execute()
            metrics.IMPRESSIONS_DROPPED.labels("erased").inc(len(gone))
        return kept

    def _queue_list(self, pipe: Any, rec: ServedList, shard: int) -> None:
        """The list's stream entry and its attribution hash (expiring)."""
        pipe.xadd(
            self.keys.impressions(shard),
            {"data": rec.to_json()},
            maxlen=max(1, self.stream_maxlen // RECS_SHARDS),  # in total: about stream_maxlen
            approximate=True,
        )
        key = self.keys.rec_info(rec.id)
        info: dict[FieldT, EncodableT] = dict(rec.attributions().items())
        pipe.hset(key, mapping=info)
        pipe.expire(key, self.ttl_s)

    @property
    def queued(self) -> int:
        """Lists logged and not yet taken by the writer."""
        return len(self._pending)

    def _run(self) -> None:
        """Every `flush_ms` (at once on `stop()`): write everything queued, in batches, and
        the counters when they are due."""
        while True:
            stopping = self._stop.wait(max(self.flush_s, _MIN_WAIT_S))
            self._busy = True
            asked = self._counts_asked  # before the lists: theirs are in this window
            try:
                while self._pending:
                    self._write_safely(self._next_batch())
                if stopping or asked > self._counts_done or time.monotonic() >= self._counts_due:
                    self._write_counts_safely()
                    self._counts_done = asked
            finally:
                self._busy = False
            if stopping:
                return

    def _next_batch(self) -> list[ServedList]:
        """Up to `batch_max` of the oldest lists queued."""
        batch: list[ServedList] = []
        while self._pending and len(batch) < self.batch_max:
            batch.append(self._pending.popleft())
        return batch

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every list queued so far is written (or dropped), and the counters with
        them; False on timeout."""
        if not self.running:
            return not (self._pending or self._busy)
        deadline = time.monotonic() + timeout_s
        self._counts_asked += 1
        asked = self._counts_asked
        while self._pending or self._busy or self._counts_done < asked:
            if time.monotonic() > deadline or not self.running:
                return False
            time.sleep(0.01)
        return True

    def _write_safely(self, batch: list[ServedList]) -> None:
        try:
            self.write(batch, self._counts)
        except Exception as e:
            self._dropped(e, len(batch))

    def _write_counts_safely(self) -> None:
        counts, self._counts = self._counts, ListCounts()
        self._counts_due = time.monotonic() + self.counts_s
        try:
            self._write_counts(counts)
        except Exception as e:
            self._dropped(e, counts.lists, "counts")

    def _dropped(self, e: Exception, n: int, reason: str | None = None) -> None:
        if reason is None:
            reason = "redis_error" if isinstance(e, redis.RedisError) else "error"
        metrics.IMPRESSIONS_DROPPED.labels(reason).inc(n)
        if time.monotonic() - self._last_warn > _WARN_EVERY_S:
            self._last_warn = time.monotonic()
            log.warning("dropped %d impressions (%s): %s: %s", n, reason, type(e).__name__, e)

    def write(self, batch: Sequence[ServedList], counts: ListCounts | None = None) -> None:
        """Write records (from `to_record`) in one pipeline; raises on Redis errors. Their
        counters are added to `counts`, for a later write; without it, written at once."""
        batch = self._not_erased(batch)
        pipe = self.redis.pipeline(transaction=False)
        for rec in batch:
            if rec.items:  # an empty list is counted for the guardrails; nothing to attribute
                self._queue_list(pipe, rec, self.keys.rec_shard(rec.id))
        pipe.execute()
        metrics.IMPRESSIONS.inc(len(batch))
        mine = ListCounts() if counts is None else counts
        for rec in batch:
            mine.add(rec)
        if counts is None:
            self._write_counts(mine)

    def _write_counts(self, counts: ListCounts) -> None:
        """One window's counters, in the next shard's hashes (the readers sum every shard)."""
        if not counts.lists:
            return
        pipe = self.redis.pipeline(transaction=False)
        counts.queue(pipe, self.keys, self._counts_shard)
        self._counts_shard = (self._counts_shard + 1) % RECS_SHARDS
        pipe.execute()
