"""redis-py's types, narrowed to the client this project builds.

`core.connect.connect_redis` makes a bytes client (no `decode_responses`): every string in a
reply is bytes. redis-py annotates each command once for every kind of client (bytes or str,
sync or async, RESP2 or RESP3) and every reply shape (ZRANGE with or without scores, ...), and
leaves `Pipeline.watch` unannotated. The helpers here say what this client returns, in one
place, so the modules that use Redis stay strictly typed without a cast at every call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from redis.client import Pipeline
from redis.typing import EncodableT, FieldT

Fields = dict[FieldT, EncodableT]
"""Fields of a hash or a stream entry as HSET and XADD take them (redis-py wants exactly this
`dict` type, so a `dict[str, str]` is refused: `dict` is invariant)."""

StreamEntry = tuple[bytes, dict[bytes, bytes]]
"""One stream entry as XREADGROUP and XAUTOCLAIM give it: its id and its fields."""


def text(raw: bytes | str) -> str:
    """A string reply as str: bytes from this client, decoded as UTF-8."""
    return raw.decode() if isinstance(raw, bytes) else raw


def members(reply: Iterable[object]) -> list[str]:
    """The members of a reply without scores (SMEMBERS, ZRANGE, ZRANGEBYSCORE, ...)."""
    out: list[str] = []
    for m in reply:
        if not isinstance(m, bytes | str):
            raise TypeError(f"expected a member, got {m!r} (a reply with scores?)")
        out.append(text(m))
    return out


def scored(reply: Iterable[object]) -> list[tuple[str, float]]:
    """The (member, score) pairs of a sorted-set reply WITHSCORES, best first as Redis sent."""
    # WITHSCORES makes redis-py pair each member with its score, parsed by float().
    pairs = cast("Iterable[tuple[bytes | str, float]]", reply)
    return [(text(m), float(s)) for m, s in pairs]


def stream_entries(reply: object) -> list[StreamEntry]:
    """The entries of an XREADGROUP reply on one stream; [] when it timed out."""
    # RESP2, this client's protocol: one [stream name, entries] pair per stream read.
    streams = cast("list[tuple[bytes, list[StreamEntry]]]", reply)
    return list(streams[0][1]) if streams else []


def stream_range(reply: object) -> list[StreamEntry]:
    """The entries of an XRANGE / XREVRANGE reply: (id, fields), in the order asked."""
    # RESP2: a list of [id, [field, value, ...]] that redis-py pairs into (id, dict).
    return list(cast("list[StreamEntry]", reply or []))


def watch(pipe: Pipeline, *keys: str) -> None:
    """WATCH `keys` in a pipeline, before its MULTI."""
    pipe.watch(*keys)  # type: ignore[no-untyped-call]  # redis-py leaves watch unannotated
