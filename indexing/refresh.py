"""Keeping candidate sets current: the refresher takes owners from the refresh queue and
rebuilds their sets, many per Milvus call.

The worker's handlers queue owners as they apply events (a user's interactions or profile,
an item's new content); the queue keeps each owner's first mark, so a burst of events costs one
refresh. Refreshing runs in its own thread with its own clients, so applying events never
waits for a search. A refresh taken but not finished (a crash) stays queued and is done again
by any refresher; an owner marked again while its set was being rebuilt stays queued too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from core.candidate_sets import queue_bulk, refresh_queued, set_tag
from core.settings import Settings
from core.stores.candidates import RedisCandidates
from core.stores.protocols import CandidateStore, item_owner, user_owner
from core.stores.users import RedisUserState
from indexing.apply import Stores

log = logging.getLogger(__name__)

IDLE_S = 0.2


def candidate_store(stores: Stores) -> RedisCandidates:
    return RedisCandidates(stores.redis, stores.keys)


def queue_users(sets: CandidateStore | None, user_ids: Sequence[str]) -> None:
    """Only users who have a set (they asked for a list): a user who only sends events costs
    no refresh, and gets a set after their first request (a miss queues it)."""
    _queue_held(sets, [user_owner(u) for u in user_ids])


def queue_items(sets: CandidateStore | None, item_ids: Sequence[str]) -> None:
    """Only items that have a set (someone asked for them): a bulk import queues nothing."""
    _queue_held(sets, [item_owner(i) for i in item_ids])


def _queue_held(sets: CandidateStore | None, owners: Sequence[str]) -> None:
    if sets is None or not owners:
        return
    have = sets.has(owners)
    if have:
        sets.mark_stale(sorted(have), time.time())


class CandidateRefresher:
    def __init__(self, stores: Stores, settings: Settings):
        self.stores = stores
        self.settings = settings
        self.sets = candidate_store(stores)
        self.users = RedisUserState(stores.redis, stores.keys)
        self.refreshed = 0

    def tag(self) -> str:
        """As serving computes it: the collection and the interaction model it has loaded."""
        cf = self.stores.registry.cf() if self.stores.registry else None
        return set_tag(self.stores.items.collection, cf.version if cf else None)

    def refresh_once(self, n: int | None = None) -> int:
        """Queue every held set once a new tag appears (re-index swap, new model), then
        rebuild up to `n` queued sets; how many owners were taken."""
        tag = self.tag()
        bulk = queue_bulk(self.sets, tag, ttl_s=self.settings.candidates.ttl_s)
        if bulk:
            log.info("candidate sets: %d queued for a refresh to %s", bulk, tag)
        taken, built = refresh_queued(
            self.stores.items,
            self.users,
            self.sets,
            settings=self.settings,
            tag=tag,
            n=n or self.settings.candidates.refresh_batch,
        )
        self.refreshed += built
        return taken

    def run(self, stop: threading.Event, defer: threading.Event | None = None) -> None:
        """Refresh until `stop`; a failure backs off and the owners stay queued. While `defer`
        is set (the worker's event loop is behind), refreshing waits: a click's effect on the
        next list comes from applying it, while a set a little older loses almost nothing."""
        backoff = IDLE_S
        while not stop.is_set():
            if defer is not None and defer.is_set():
                stop.wait(IDLE_S / 4)
                continue
            try:
                n = self.refresh_once()
                backoff = IDLE_S
            except Exception as e:
                log.warning("candidate refresh failed (%s: %s); retrying", type(e).__name__, e)
                n, backoff = 0, min(backoff * 2, 10.0)
            if n == 0 and stop.wait(backoff):
                return
