"""`python -m vantage.lite_server server --data-dir D --host H --port P`: Milvus Lite's own
server (`python -m milvus_lite server`), whose gRPC server also accepts the keepalive pings
pymilvus sends every 10 s on an idle channel.

Milvus Lite keeps gRPC's server defaults, which allow a ping on a channel with no call in
flight once every two hours and answer more with GOAWAY "too_many_pings": 30 s after its last
call, every client's channel is closed and reconnects. A call made as that happens fails (seen
in CI after the shared client sat idle for a few minutes), and the API, which serves from its
caches for minutes without calling Milvus, would count a failure against a healthy Milvus.
A Milvus server permits these pings (keepalive enforcement of 5 s, calls or none)."""

from __future__ import annotations

from typing import Any

import grpc

PING_OPTIONS = [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
]

_grpc_server = grpc.server


def _server(*args: Any, **kwargs: Any) -> Any:
    kwargs["options"] = [*kwargs.get("options", ()), *PING_OPTIONS]
    return _grpc_server(*args, **kwargs)


def main() -> int:
    from milvus_lite import cmdline

    grpc.server = _server  # this process runs nothing but the server
    return int(cmdline.main())


if __name__ == "__main__":
    raise SystemExit(main())
