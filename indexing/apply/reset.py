"""A user's own "reset my history" (`POST /v1/users/{id}/history/reset`), applied by the
worker of the user's partition after every event of theirs accepted before it: their
history, affinities, confidences, dislikes and learned vectors go, so do their candidate set
and their row in the Milvus users collection; their profile (birth year, region, language,
stated preferences and its vector), their controls and the popularity and trending counts
they contributed to stay; their cached and last good lists go too (and the version bump
makes any other cached list of theirs unreachable). The reset's time is kept
(`keys.history_resets`): training leaves out the events they logged before it.
"""

from __future__ import annotations

from collections.abc import Sequence

from core import events as ev
from indexing.apply.erasure import cached_lists
from indexing.apply.stores import Stores


def apply_resets(s: Stores, run: Sequence[ev.Event]) -> None:
    for e in run:
        reset(s, str(e.data["user_id"]), float(e.data.get("at") or 0.0))


def reset(s: Stores, user_id: str, at: float) -> None:
    k = s.keys
    pipe = s.redis.pipeline(transaction=True)
    pipe.delete(k.history(user_id), k.devices(user_id), k.affinity(user_id), k.confidence(user_id))
    pipe.delete(k.negatives(user_id), k.candidates(f"u:{user_id}"))
    pipe.hdel(k.user(user_id), "cvec", "cfvec")
    pipe.hincrby(k.user(user_id), "ver", 1)
    pipe.hset(k.controls(user_id), "reset_at", repr(at))
    pipe.execute()
    s.redis.hset(k.history_resets, user_id, repr(at))  # training skips what came before
    s.user_sync.pending.discard(user_id)  # nothing of the old profile is mirrored back
    s.users.delete([user_id])
    s.mark_written()
    cached_lists(s, user_id)  # last good lists (for outages) were personal too
