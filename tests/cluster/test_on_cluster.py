"""The write path, the API flow and the stores, run unchanged on a Redis Cluster.

Each test below is a test of tests/integration, collected here again: `settings` (see this
package's conftest) now names the cluster, so every key, script and transaction they touch
must be single-slot (`core/keys.py`), and pipelines with scripts go through the cluster
pipeline path (`core/scripts.execute`).
"""

from __future__ import annotations

from typing import Any

import redis

from core.domain import Interaction
from core.scripts import APPLY_INTERACTION
from indexing.apply import apply_interactions
from tests.integration.test_admin import (
    test_dead_letters_are_listed_paged_and_discarded,
    test_queue_status_reports_pending_and_lag,
    test_replayed_dead_letter_applies_exactly_once,
)
from tests.integration.test_api_flow import (
    test_cached_list_drops_items_deleted_since,
    test_homepage_follows_interactions,
    test_item_put_get_delete,
    test_patch_changes_some_profile_fields_and_keeps_the_others,
    test_profile_events_that_reach_the_stream_late_cannot_undo_a_newer_profile,
    test_related_surface,
    test_safety_minor_and_cache,
)
from tests.integration.test_attribution import (
    test_clicks_are_attributed_once_per_served_item,
    test_dislikes_and_skips_are_remembered_until_a_later_positive,
    test_logged_list_writes_stream_served_items_and_stats,
    test_surface_metrics_show_impressions_clicks_and_ctr,
)
from tests.integration.test_auth import (
    test_rate_limit_answers_429_with_retry_after,
    test_rate_limit_leases_across_processes_stay_within_the_limit,
)
from tests.integration.test_candidate_sets import test_worker_queues_refresher_builds_requests_serve
from tests.integration.test_erasure import (
    setup,
    test_erasure_leaves_no_trace_but_the_aggregates,
    test_erasure_resumes_after_a_crash_midway,
)
from tests.integration.test_experiments import (
    test_arms_count_what_they_served_and_the_decision_follows_the_evidence,
)
from tests.integration.test_faults import test_workers_killed_three_times_lose_and_double_nothing
from tests.integration.test_partitions import (
    psettings,
    pstores,
    test_a_lapsed_lease_is_taken_over_with_its_pending_entries,
    test_a_users_events_share_one_partition_in_order,
    test_dead_letters_of_every_partition_are_paged_replayed_and_discarded,
    test_idempotent_publish_spanning_partitions_stores_each_share_once,
    test_leases_share_partitions_fairly_and_move_when_a_worker_leaves,
    test_three_workers_share_eight_partitions_and_apply_each_event_once,
)
from tests.integration.test_worker import (
    test_an_item_write_is_stamped_again_once_it_reached_the_index,
    test_dead_consumers_entries_are_reclaimed,
    test_duplicate_event_in_two_workers_applies_once,
    test_poison_message_is_dead_lettered_and_later_events_apply,
    test_redelivered_interactions_apply_once,
    test_stale_item_write_cannot_undo_a_newer_one,
)

__all__ = [
    "psettings",
    "pstores",
    "setup",
    "test_a_lapsed_lease_is_taken_over_with_its_pending_entries",
    "test_a_users_events_share_one_partition_in_order",
    "test_an_item_write_is_stamped_again_once_it_reached_the_index",
    "test_arms_count_what_they_served_and_the_decision_follows_the_evidence",
    "test_cached_list_drops_items_deleted_since",
    "test_clicks_are_attributed_once_per_served_item",
    "test_dead_consumers_entries_are_reclaimed",
    "test_dead_letters_are_listed_paged_and_discarded",
    "test_dead_letters_of_every_partition_are_paged_replayed_and_discarded",
    "test_dislikes_and_skips_are_remembered_until_a_later_positive",
    "test_duplicate_event_in_two_workers_applies_once",
    "test_erasure_leaves_no_trace_but_the_aggregates",
    "test_erasure_resumes_after_a_crash_midway",
    "test_homepage_follows_interactions",
    "test_idempotent_publish_spanning_partitions_stores_each_share_once",
    "test_item_put_get_delete",
    "test_leases_share_partitions_fairly_and_move_when_a_worker_leaves",
    "test_logged_list_writes_stream_served_items_and_stats",
    "test_patch_changes_some_profile_fields_and_keeps_the_others",
    "test_poison_message_is_dead_lettered_and_later_events_apply",
    "test_profile_events_that_reach_the_stream_late_cannot_undo_a_newer_profile",
    "test_queue_status_reports_pending_and_lag",
    "test_rate_limit_answers_429_with_retry_after",
    "test_rate_limit_leases_across_processes_stay_within_the_limit",
    "test_redelivered_interactions_apply_once",
    "test_related_surface",
    "test_replayed_dead_letter_applies_exactly_once",
    "test_safety_minor_and_cache",
    "test_stale_item_write_cannot_undo_a_newer_one",
    "test_surface_metrics_show_impressions_clicks_and_ctr",
    "test_three_workers_share_eight_partitions_and_apply_each_event_once",
    "test_worker_queues_refresher_builds_requests_serve",
    "test_workers_killed_three_times_lose_and_double_nothing",
]


def test_the_client_is_a_cluster_client_and_keys_spread_over_nodes(stores: Any) -> None:
    r = stores.redis
    assert isinstance(r, redis.RedisCluster) and len(r.get_primaries()) == 3
    users = [f"user-{i}" for i in range(30)]
    nodes = {r.get_node_from_key(stores.keys.user(u)).name for u in users}
    assert len(nodes) == 3  # one user's keys on one node, users spread over all of them


def test_pipelined_scripts_survive_a_node_losing_its_scripts(stores: Any) -> None:
    """A failed-over replica starts with an empty script cache: entries answered NOSCRIPT are
    loaded and run again, alone, and nothing is applied twice."""
    r, k = stores.redis, stores.keys
    like = Interaction(user_id="u", item_id="a", type="like")
    assert apply_interactions(stores, [("1-0", like)], refresh=False) == 1
    r.script_flush()  # on every primary
    sha = APPLY_INTERACTION.registered(r).sha
    assert not any(n.redis_connection.script_exists(sha)[0] for n in r.get_primaries())
    assert apply_interactions(stores, [("2-0", like), ("1-0", like)], refresh=False) == 1
    assert float(r.zscore(k.popularity, "a")) == 2 * like.weight
    assert r.zcard(k.history("u")) == 1
