"""The Lua scripts through their wrapper: named arguments, and EVALSHA after SCRIPT FLUSH."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.connect import connect_redis
from core.domain import Interaction
from core.keys import Keys
from core.scripts import CLAIM_VERSIONS, TOKEN_BUCKET
from core.settings import Settings
from indexing.apply import apply_interactions


def test_token_bucket_by_name_survives_script_flush(settings: Settings) -> None:
    r = connect_redis(settings)
    bucket = Keys.of(settings.redis).rate_limit("t")

    def take() -> tuple[int, int]:
        allowed, wait_ms = TOKEN_BUCKET(
            r, keys={"bucket": bucket}, args={"rate": 0.5, "burst": 2, "want": 1}
        )
        return int(allowed), int(wait_ms)

    assert TOKEN_BUCKET.registered(r) is TOKEN_BUCKET.registered(r)  # once per client
    assert [take()[0] for _ in range(2)] == [1, 1]
    r.script_flush()  # a restarted or failed-over server has no scripts cached
    allowed, wait_ms = take()
    assert allowed == 0 and 1000 < wait_ms <= 2000
    with pytest.raises(TypeError, match="missing \\['want'\\]"):
        TOKEN_BUCKET(r, keys={"bucket": bucket}, args={"rate": 1, "burst": 2})
    with pytest.raises(TypeError, match="unknown \\['key'\\]"):
        TOKEN_BUCKET(
            r, keys={"bucket": bucket, "key": "x"}, args={"rate": 1, "burst": 2, "want": 1}
        )
    r.close()


def test_version_claims_take_a_sequence_of_pairs(settings: Settings) -> None:
    r = connect_redis(settings)
    k = Keys.of(settings.redis)
    keys = {"versions": k.item_versions, "changes": k.item_changes, "feed": k.catalogue_feed}
    pairs = ["x", "5-0", "x", "4-9", "y", "", "z", "5-1"]
    claim = {"feed_max": 100, "item_versions": pairs}
    assert CLAIM_VERSIONS(r, keys=keys, args=claim) == [1, 0, 1, 1]
    r.script_flush()
    assert CLAIM_VERSIONS(r, keys=keys, args={**claim, "item_versions": ["x", "5-0"]}) == [1]
    assert r.hgetall(keys["versions"]) == {b"x": b"5-0", b"z": b"5-1"}
    assert {m.decode() for m in r.zrange(keys["changes"], 0, -1)} == {"x", "y", "z"}
    # Each claim's stamped ids on the feed serving processes follow (not the stale one).
    feed = [json.loads(f[b"ids"]) for _, f in r.xrange(keys["feed"])]
    assert feed == [["x", "y", "z"], ["x"]]
    r.close()


def test_pipelined_scripts_and_the_lease_survive_script_flush(stores: Any) -> None:
    r, k = stores.redis, stores.keys
    like = Interaction(user_id="u", item_id="a", type="like")
    assert apply_interactions(stores, [("1-0", like)], refresh=False) == 1
    r.script_flush()  # the pipeline checks SCRIPT EXISTS and loads what is missing
    assert apply_interactions(stores, [("2-0", like)], refresh=False) == 1
    assert apply_interactions(stores, [("2-0", like)], refresh=False) == 0  # exactly once
    assert float(r.zscore(k.popularity, "a")) == 2 * like.weight
    r.script_flush()
    with stores.item_writes():
        assert r.zscore(k.item_writers, stores.lease.writer_id) is not None
    assert r.zscore(k.item_writers, stores.lease.writer_id) is None


def test_token_bucket_leases_take_what_is_left(settings: Settings) -> None:
    r = connect_redis(settings)
    bucket = Keys.of(settings.redis).rate_limit("lease")

    def take(want: int) -> int:
        taken, _ = TOKEN_BUCKET(
            r, keys={"bucket": bucket}, args={"rate": 0.01, "burst": 10, "want": want}
        )
        return int(taken)

    assert [take(4), take(4), take(4), take(4)] == [4, 4, 2, 0]
    r.close()
