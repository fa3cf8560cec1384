"""A Redis Cluster on loopback from the same redis-server binary as the embedded stack: for the
cluster tests and benches (3 masters + 3 replicas by default), never for production.

Each node is a child redis-server in cluster mode with its own data directory; `redis-cli
--cluster create` (the binary beside the server) assigns the 16,384 slots and the replicas.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from vantage.stack import ChildServer, free_port, redis_server_binary, start_redis


@dataclass
class LocalCluster:
    nodes: list[ChildServer] = field(default_factory=list)

    @property
    def ports(self) -> list[int]:
        return [int(n.url.rsplit(":", 1)[1].split("/")[0]) for n in self.nodes]

    @property
    def url(self) -> str:
        """Any node bootstraps a cluster client; the first is as good as any."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        p = free_port()
        if p + 10_000 < 65_536 and _bindable(p + 10_000):
            return p


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _info(port: int, section: str) -> dict[str, object]:
    c = redis.Redis(port=port, socket_timeout=2)
    try:
        return dict(c.info(section))
    finally:
        c.close()


def _cluster_state(port: int) -> str:
    c = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
    try:
        info = c.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]  # a dict
        return str(info.get("cluster_state"))
    finally:
        c.close()


def cluster_ok(ports: list[int], masters: int) -> bool:
    """Every node on `ports` answers, sees the cluster ok, and `masters` of them are masters
    with their replicas linked."""
    try:
        roles = [_info(p, "replication") for p in ports]
        states = [_cluster_state(p) for p in ports]
    except redis.RedisError:
        return False
    linked = all(r.get("master_link_status", "up") == "up" for r in roles)
    n_masters = sum(r.get("role") == "master" for r in roles)
    return all(s == "ok" for s in states) and linked and n_masters == masters


def start_cluster(
    root: Path, *, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 2000
) -> LocalCluster:
    """Start masters x (1 + replicas) nodes and join them into one cluster (about 3 s)."""
    cluster = LocalCluster()
    try:
        for _ in range(masters * (1 + replicas)):
            port = _cluster_port()
            cluster.nodes.append(
                start_redis(
                    root / str(port),
                    port,
                    extra=[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        f"nodes-{port}.conf",
                        "--cluster-node-timeout",
                        str(node_timeout_ms),
                    ],
                )
            )
        cli = str(Path(redis_server_binary()).with_name("redis-cli"))
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in cluster.ports],
                "--cluster-replicas",
                str(replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 60
        while not cluster_ok(cluster.ports, masters):
            if time.monotonic() > deadline:
                raise TimeoutError("the local Redis Cluster did not become ready in 60 s")
            time.sleep(0.2)
        return cluster
    except BaseException:
        cluster.stop()
        raise
