"""The project's Redis client answers sorted-set reads exactly as a stock redis-py client does
(its faster score conversion is a shape-for-shape replacement), on a real redis-server."""

from __future__ import annotations

import redis

from core.connect import ZSET_READS, _zset_pairs, connect_redis
from core.keys import Keys
from core.settings import Settings


def test_sorted_set_reads_match_a_stock_client(settings: Settings) -> None:
    key = Keys.of(settings.redis).popularity + ":test-zset"
    other = key + ":b"
    for decode in (False, True):
        ours = connect_redis(settings, decode=decode)
        stock = redis.Redis.from_url(settings.redis.url, decode_responses=decode)
        assert all(ours.response_callbacks[c] is _zset_pairs for c in ZSET_READS)
        assert stock.response_callbacks["ZRANGE"] is not _zset_pairs
        ours.zadd(key, {"a": 1.5, "b": 2.0, "c": -3.25, "d": 1e18, "e": 1 / 3})
        ours.zadd(other, {"a": 1.0, "b": 0.5})
        reads = [
            lambda r: r.zrange(key, 0, -1, withscores=True),
            lambda r: r.zrevrange(key, 0, 2, withscores=True),
            lambda r: r.zrangebyscore(key, "-inf", "+inf", withscores=True),
            lambda r: r.zrevrangebyscore(key, "+inf", 0, withscores=True),
            lambda r: r.zrange(key, 0, -1, withscores=True, score_cast_func=int),
            lambda r: r.zrange(key, 0, -1),  # no scores: members as they are
            lambda r: r.zunion([key, other], withscores=True),
            lambda r: r.zinter([key, other], withscores=True),
            lambda r: r.zrange(key + ":missing", 0, -1, withscores=True),
        ]
        for read in reads:
            got, want = read(ours), read(stock)
            assert repr(got) == repr(want)  # the same values, types and shapes
        pipe = ours.pipeline(transaction=False)
        pipe.zrevrange(key, 0, -1, withscores=True)
        assert pipe.execute()[0] == stock.zrevrange(key, 0, -1, withscores=True)
        ours.delete(key, other)
        ours.close()
        stock.close()
