"""The serving process's copy of the tombstones and the change log, followed from the catalogue
feed (core/stores/catalogue.py): after any sequence of writes it answers exactly what reading
both sorted sets answers, whether it started before the writes or after them, fell behind
further than the feed keeps, or lost the feed altogether."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from core.connect import connect_redis
from core.keys import Keys
from core.resilience import CircuitBreaker
from core.scripts import CLAIM_VERSIONS
from core.settings import Settings
from core.stores.catalogue import FEED_MAX, FOLLOW_COUNT, RedisCatalogue, announce

IDS = [f"i{k}" for k in range(8)]


@pytest.fixture
def r(settings: Settings) -> Iterator[redis.Redis]:
    client = connect_redis(settings, decode=True)
    yield client
    client.close()


def _catalogue(r: redis.Redis, keys: Keys, *, follow: bool) -> RedisCatalogue:
    return RedisCatalogue(r, keys, CircuitBreaker("redis", 3, 5.0), follow=follow)


def _written(r: redis.Redis, keys: Keys, ids: list[str]) -> None:
    """An item write as the worker claims it: stamped in the change log, named on the feed."""
    pairs = [x for i in ids for x in (i, "")]
    CLAIM_VERSIONS(
        r,
        keys={
            "versions": keys.item_versions,
            "changes": keys.item_changes,
            "feed": keys.catalogue_feed,
        },
        args={"feed_max": FEED_MAX, "item_versions": pairs},
    )


def _tombstone(
    r: redis.Redis, keys: Keys, ids: list[str], at: float, *, lift: bool = False
) -> None:
    pipe = r.pipeline(transaction=False)
    if lift:
        pipe.zrem(keys.tombstones, *ids)
    else:
        pipe.zadd(keys.tombstones, dict.fromkeys(ids, at))
    announce(pipe, keys, ids)
    pipe.execute()


def _same(followed: RedisCatalogue, direct: RedisCatalogue) -> None:
    got, want = followed.marks(IDS), direct.marks(IDS)
    assert got.tombstoned == want.tombstoned
    assert got.changed_at == pytest.approx(want.changed_at)


def test_a_follower_sees_every_write_before_its_call(r: redis.Redis, settings: Settings) -> None:
    keys = Keys.of(settings.redis)
    direct = _catalogue(r, keys, follow=False)
    early = _catalogue(r, keys, follow=True)
    _same(early, direct)  # empty: read everything once
    _written(r, keys, ["i0", "i1"])
    _tombstone(r, keys, ["i1", "i2"], 1.0)
    assert early.marks(IDS).tombstoned == {"i1", "i2"}
    assert set(early.marks(IDS).changed_at) == {"i0", "i1"}
    _tombstone(r, keys, ["i1"], 0, lift=True)  # a DELETE, then a PUT
    _written(r, keys, ["i3"])
    _same(early, direct)
    assert early.marks(IDS).tombstoned == {"i2"}
    late = _catalogue(r, keys, follow=True)  # a process started after the writes
    _same(late, direct)
    # Later reads within one request may answer from memory; a new request reads the feed.
    _tombstone(r, keys, ["i4"], 4.0)
    assert "i4" not in early.marks(IDS, current=False).tombstoned
    assert "i4" in early.marks(IDS).tombstoned
    assert early.follower is not None and early.follower.reloads <= 2


def test_a_follower_far_behind_or_without_a_feed_reads_everything_again(
    r: redis.Redis, settings: Settings
) -> None:
    keys = Keys.of(settings.redis)
    direct = _catalogue(r, keys, follow=False)
    followed = _catalogue(r, keys, follow=True)
    _written(r, keys, ["i0"])
    _same(followed, direct)
    assert followed.follower is not None
    reloads = followed.follower.reloads
    # More entries than one read takes: read in turns, no reload.
    for k in range(FOLLOW_COUNT + 10):
        _tombstone(r, keys, [IDS[k % 8]], float(k), lift=k % 3 == 0)
    _same(followed, direct)
    assert followed.follower.reloads == reloads
    # Trimmed past the follower's last entry: the entries it missed are gone, so it reads
    # both sorted sets again.
    _tombstone(r, keys, ["i5"], 5.0)
    _written(r, keys, ["i6"])
    r.xtrim(keys.catalogue_feed, maxlen=1, approximate=False)
    _same(followed, direct)
    assert followed.follower.reloads == reloads + 1
    # The feed deleted (a flushed namespace): the same.
    r.delete(keys.catalogue_feed)
    _tombstone(r, keys, ["i7"], 7.0)
    r.delete(keys.catalogue_feed)
    _same(followed, direct)
    assert followed.follower.reloads == reloads + 2
    # Written anew with older ids (a server that lost its data, on a clock set back).
    r.delete(keys.catalogue_feed)
    r.zadd(keys.tombstones, {"i3": 3.0})
    r.xadd(keys.catalogue_feed, {"ids": '["i3"]'}, id="1-0")
    _same(followed, direct)
    assert followed.follower.reloads == reloads + 3


def test_too_many_marks_are_read_directly_until_they_fit_again(
    r: redis.Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalogue imported within the hour has every item in the change log: a follower does
    not load them all (1M entries blocked Redis past the serving timeout); it answers from
    direct reads, exactly, and follows again once the sets fit."""
    from core.stores import catalogue

    monkeypatch.setattr(catalogue, "FOLLOW_MAX", 4)
    keys = Keys.of(settings.redis)
    direct = _catalogue(r, keys, follow=False)
    _written(r, keys, IDS[:4])
    _tombstone(r, keys, ["i5"], 1.0)  # 5 marks in all: over the bound
    followed = _catalogue(r, keys, follow=True)
    _same(followed, direct)
    assert followed.follower is not None and not followed.follower.following
    assert followed.tombstoned(IDS) == {"i5"}
    _written(r, keys, ["i6"])
    _same(followed, direct)  # still exact: every call reads the ids
    r.zremrangebyrank(keys.item_changes, 0, 2)  # the job runner's pruning: 3 marks left
    _same(followed, direct)  # rechecks only every FOLLOW_RECHECK_S
    assert not followed.follower.following
    monkeypatch.setattr(followed.follower, "_big_until", 0.0)
    _same(followed, direct)
    assert followed.follower.following


def test_requests_in_flight_together_share_a_read_begun_after_they_began(
    r: redis.Redis, settings: Settings
) -> None:
    """`since`: a read of the feed begun at or after a request began is current for it (no
    round trip of its own); a write made before the request began is always seen."""
    keys = Keys.of(settings.redis)
    followed = _catalogue(r, keys, follow=True)
    assert followed.follower is not None
    began = time.monotonic()
    followed.marks(IDS, since=began)  # reads the feed: no read began since `began`
    read = followed.follower._synced_from
    assert read >= began
    _tombstone(r, keys, ["i0"], 1.0)
    # A request that began before that read: the read is current for it.
    assert "i0" not in followed.marks(IDS, since=began).tombstoned
    assert followed.follower._synced_from == read  # no round trip
    # A request that began after the tombstone: reads the feed, sees it.
    assert "i0" in followed.marks(IDS, since=time.monotonic()).tombstoned
    assert followed.follower._synced_from > read
    # Without `since`, every request reads the feed, as before.
    _tombstone(r, keys, ["i1"], 2.0)
    assert "i1" in followed.marks(IDS).tombstoned
