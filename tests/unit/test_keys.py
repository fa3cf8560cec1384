"""Key names designed for Redis Cluster slots: every script call and every transaction of the
code touches keys of one hash tag (one slot), checked with redis-py's own slot function."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from core.keys import Keys

K = Keys("vtg")


def _one_slot(*keys: str) -> bool:
    return len({key_slot(k.encode()) for k in keys}) == 1


@pytest.mark.parametrize(
    "name, keys",
    [
        # Lua scripts (core/scripts), as their callers build the keys
        ("claim_versions", [K.item_versions, K.item_changes, K.catalogue_feed]),
        ("follow_catalogue", [K.catalogue_feed, K.tombstones, K.item_changes]),
        ("take_lease", [K.item_freeze, K.item_writers]),
        ("candidate queue", [K.candidates_stale, K.candidates_taken, K.candidates_next]),
        ("token_bucket", [K.rate_limit("key1")]),
        (
            "count_interactions",
            [K.counted("1-1"), K.popularity, K.users_index, K.trending(), K.trending("cat:x")],
        ),
        ("attribute_click", [K.rec_info("r1"), K.surface_stats(K.rec_shard("r1"))]),
        ("served list", [K.rec_info("r2"), K.impressions(K.rec_shard("r2")), K.pages("r2")]),
        ("idempotent publish", [K.idempotency(0, "d1"), K.stream(0)]),
        # MULTI / WATCH transactions
        ("model registry", [K.model("cf"), K.model_versions("cf"), K.model("ranker")]),
        ("rules", [K.rules, K.rules_version]),
        ("jobs", [K.jobs, K.jobs_index, K.job("j1"), K.job_active("reindex"), K.job_lock]),
        ("trending rebase", [K.trending_epoch, K.trending_scopes, K.trending("cat:jazz")]),
        ("api keys", [K.api_key("k1"), K.api_keys]),
        ("dead letter", [K.dead_letters(0), K.stream(0)]),
        # apply_interaction.lua and reads: one user's state and exactly-once markers
        (
            "user",
            [
                K.user("ann"),
                K.history("ann"),
                K.devices("ann"),
                K.session_journal("ann"),
                K.affinity("ann"),
                K.confidence("ann"),
                K.negatives("ann"),
                K.controls("ann"),
                K.candidates("u:ann"),
                K.done("ann", "1-1"),
            ],
        ),
    ],
)
def test_keys_used_together_share_a_slot(name: str, keys: list[str]) -> None:
    assert _one_slot(*keys), name


def test_owners_spread_over_slots_and_names_round_trip() -> None:
    users = {key_slot(K.user(f"user-{i}").encode()) for i in range(100)}
    assert len(users) > 90  # users are not piled on one node
    assert not _one_slot(K.user("ann"), K.user("bob"))
    assert not _one_slot(K.popularity, K.tombstones)  # the two hot catalogue keys differ
    assert K.candidate_owner(K.candidates("u:ann")) == "u:ann"
    assert K.candidate_owner(K.candidates("i:x:1")) == "i:x:1"
    with pytest.raises(ValueError):
        K.candidate_owner(K.user("ann"))
    assert all(k.startswith("{vtg:") for k in (K.stream(0), K.user("a"), K.result_cache("d")))
    assert K.scan_pattern == "{vtg:*"
    shards = {K.rec_shard(f"rec-{i}") for i in range(200)}
    assert shards == set(range(16))  # served lists spread over every shard


def test_cluster_reshaping_errors_are_redis_errors() -> None:
    """What redis-py raises while a failover moves slots reaches the API's fallbacks and the
    worker's back-off as a `redis.ConnectionError`; a cross-slot transaction stays a bug."""
    import redis
    from redis.exceptions import CrossSlotTransactionError, SlotNotCoveredError

    from core.connect import _as_redis_error

    moved = _as_redis_error(SlotNotCoveredError("Slot 42 is not covered by the cluster."))
    assert isinstance(moved, redis.ConnectionError) and "Slot 42" in str(moved)
    bug = CrossSlotTransactionError("keys in different slots")
    assert _as_redis_error(bug) is bug
