"""Waiting for replicas: an accepted write, or an applied event, survives the loss of a master.

Redis replicates asynchronously; `WAIT n ms` blocks until `n` replicas have everything the
*calling connection* wrote. A write may have gone through any pooled connection, so the wait
first writes a small fence key on the same connection, in one pipeline per master (a cluster
pipeline sends one node's commands on one connection, in order): the fence's replication
offset is past every earlier write to that master, whoever made it, so once a replica has
the fence it has them all.

It is bounded: after `timeout_ms` the write stands with fewer copies (Redis's own model: a
master whose replica is gone, e.g. just after a failover, keeps accepting writes), and the
caller logs it. `replicas = 0` (a single server, the default) skips the wait entirely.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import redis
from redis.exceptions import RedisClusterException

from core.keys import Keys

log = logging.getLogger(__name__)

# Fence keys are tiny, expire, and never read.
FENCE_TTL_S = 60
_last_warning = 0.0


def _fence_keys(client: redis.RedisCluster, keys: Keys) -> dict[str, tuple[Any, str]]:
    """One fence key per master (node name -> (node, key)): a tag whose slot it owns."""
    masters = {n.name: n for n in client.get_primaries()}  # type: ignore[no-untyped-call]
    out: dict[str, tuple[Any, str]] = {}
    i = 0
    while len(out) < len(masters) and i < 10_000:
        key = f"{keys.tag(f'fence{i}')}:fence"
        node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
        if node is not None and node.name in masters and node.name not in out:
            out[node.name] = (node, key)
        i += 1
    return out


def _owner(client: redis.RedisCluster, key: str) -> str:
    node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
    if node is None:
        raise RedisClusterException(f"no node serves the slot of {key!r}")
    return str(node.name)


def wait_for_replicas(
    client: Any,
    keys: Keys,
    replicas: int,
    timeout_ms: int,
    written: Iterable[str] | None = None,
) -> int:
    """Block until `replicas` replicas hold all writes made so far to the masters of the
    `written` keys (None: every master), or the timeout; the fewest replicas any of them
    reached (`replicas` when skipped)."""
    if replicas <= 0:
        return replicas
    pipe = client.pipeline(transaction=False)
    if isinstance(client, redis.RedisCluster):
        try:
            fences = _fence_keys(client, keys)
            if written is not None:
                owners = {_owner(client, k) for k in written}
                fences = {name: f for name, f in fences.items() if name in owners}
        except RedisClusterException as e:  # the slots are moving: the same as an outage
            raise redis.ConnectionError(f"Redis Cluster unavailable: {e}") from e
        for node, key in fences.values():
            pipe.set(key, b"1", ex=FENCE_TTL_S)
            pipe.execute_command("WAIT", replicas, timeout_ms, target_nodes=node)
    else:
        pipe.set(f"{keys.tag('fence')}:fence", b"1", ex=FENCE_TTL_S)
        pipe.execute_command("WAIT", replicas, timeout_ms)
    reached = min(int(v) for v in pipe.execute()[1::2])
    if reached < replicas:
        _warn(reached, replicas, timeout_ms)
    return reached


def _warn(reached: int, wanted: int, timeout_ms: int) -> None:
    global _last_warning
    if time.monotonic() - _last_warning > 10:  # one line per 10 s, not one per write
        _last_warning = time.monotonic()
        log.warning(
            "writes reached %d of %d replicas within %d ms (a replica is down or behind); "
            "they stand on fewer copies",
            reached,
            wanted,
            timeout_ms,
        )
