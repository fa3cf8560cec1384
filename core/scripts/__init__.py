"""Lua scripts run in Redis: one `.lua` file each, called with named keys and arguments.

Each file declares the order of its KEYS and ARGV in two header lines, next to the code that
indexes them:

    -- KEYS: freeze writers
    -- ARGV: writer lease_ms

`Script` maps named values onto those positions, so no caller counts them; a last name written
`*name` takes a sequence and fills the rest (a variable number of keys or arguments). A call
with a missing or unknown name raises `TypeError` before anything is sent.

Scripts run by EVALSHA through redis-py's `register_script`, registered once per client: after
a SCRIPT FLUSH, or on a server that never saw the script, the NOSCRIPT answer makes redis-py
load it and run it again (inside a pipeline it checks SCRIPT EXISTS before executing).

On a Redis Cluster, redis-py 8.1 refuses EVALSHA queued on a cluster pipeline (redis-py issue
#2914), so it is queued as a raw command, routed by its keys like any other; the script is
loaded on every primary first, and `execute` re-runs, alone, any entry a node answered
NOSCRIPT (a failed-over replica has an empty script cache; such an entry never ran).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Any
from weakref import WeakKeyDictionary

import redis
from redis.client import Pipeline
from redis.cluster import ClusterPipeline
from redis.commands.core import Script as RedisScript
from redis.exceptions import NoScriptError

Value = str | bytes | int | float
_HEADER = re.compile(r"^-- (KEYS|ARGV):(.*)$", re.MULTILINE)
_NAME = re.compile(r"^\*?[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Signature:
    """The names of a script's KEYS or ARGV in order; `rest` names a trailing sequence."""

    names: tuple[str, ...]
    rest: str | None

    @classmethod
    def parse(cls, declared: str, where: str) -> Signature:
        names = declared.split()
        bad = [n for n in names if not _NAME.match(n)]
        starred = [n for n in names if n.startswith("*")]
        if bad or len(names) != len(set(n.lstrip("*") for n in names)):
            raise ValueError(f"{where}: bad or repeated names {bad or names}")
        if starred and (len(starred) > 1 or names[-1] != starred[0]):
            raise ValueError(f"{where}: only the last name may be *starred")
        if starred:
            return cls(tuple(names[:-1]), starred[0][1:])
        return cls(tuple(names), None)

    @cached_property
    def expected(self) -> frozenset[str]:
        return frozenset((*self.names, *([self.rest] if self.rest else [])))

    def bind(self, given: Mapping[str, Any], what: str) -> list[Any]:
        """The values in declared order (the `rest` sequence spread at the end)."""
        expected = self.expected
        if given.keys() != expected:
            missing, unknown = expected - given.keys(), given.keys() - expected
            raise TypeError(f"{what}: missing {sorted(missing)}, unknown {sorted(unknown)}")
        values = [given[n] for n in self.names]
        if self.rest is not None:
            values.extend(given[self.rest])
        return values


class Script:
    """One `.lua` file of this package, callable with named keys and arguments."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = resources.files(__name__).joinpath(f"{name}.lua").read_text("utf-8")
        declared = dict(_HEADER.findall(self.source))
        if declared.keys() != {"KEYS", "ARGV"}:
            raise ValueError(f"{name}.lua must declare '-- KEYS:' and '-- ARGV:' header lines")
        self.keys = Signature.parse(declared["KEYS"], f"{name}.lua KEYS")
        self.args = Signature.parse(declared["ARGV"], f"{name}.lua ARGV")
        self._registered: WeakKeyDictionary[redis.Redis, RedisScript] = WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"Script({self.name!r})"

    def registered(self, client: redis.Redis) -> RedisScript:
        """redis-py's script object for this client (its SHA computed once)."""
        script = self._registered.get(client)
        if script is None:
            script = self._registered[client] = client.register_script(self.source)
        return script

    def __call__(
        self,
        client: redis.Redis,
        *,
        keys: Mapping[str, Value | Sequence[Value]],
        args: Mapping[str, Value | Sequence[Value]],
        pipe: Pipeline | ClusterPipeline | None = None,
    ) -> Any:
        """Run the script on `client`, or queue it on `pipe` (a pipeline of `client`; run it
        with `execute`)."""
        script = self.registered(client)
        bound_keys = self.keys.bind(keys, f"{self.name} KEYS")
        bound_args = self.args.bind(args, f"{self.name} ARGV")
        if isinstance(pipe, ClusterPipeline):
            if script.sha not in _loaded.setdefault(client, set()):
                client.script_load(self.source)  # a cluster client loads it on every primary
                _loaded[client].add(script.sha)
            # The raw command, as redis-py 8.1 blocks `evalsha` on a cluster pipeline.
            command = ("EVALSHA", script.sha, len(bound_keys), *bound_keys, *bound_args)
            _queued.setdefault(pipe, {})[len(pipe)] = (self.source, command)
            return pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        return script(keys=bound_keys, args=bound_args, client=pipe)


_loaded: WeakKeyDictionary[redis.Redis, set[str]] = WeakKeyDictionary()  # client -> SHAs
# Scripts queued on a cluster pipeline: position -> (source, command), to run one again.
_queued: WeakKeyDictionary[ClusterPipeline, dict[int, tuple[str, tuple[Any, ...]]]] = (
    WeakKeyDictionary()
)


def execute(client: redis.Redis, pipe: Pipeline | ClusterPipeline) -> list[Any]:
    """`pipe.execute()`; on a cluster, entries answered NOSCRIPT run again alone once their
    script is loaded again (they never ran, so nothing runs twice). Other errors raise."""
    if not isinstance(pipe, ClusterPipeline):
        return pipe.execute()
    queued = _queued.pop(pipe, {})
    results = pipe.execute(raise_on_error=False)
    for i, res in enumerate(results):
        if isinstance(res, NoScriptError) and i in queued:
            source, command = queued[i]
            client.script_load(source)
            results[i] = client.execute_command(*command)  # type: ignore[no-untyped-call]
        elif isinstance(res, Exception):
            raise res
    return results


TAKE_LEASE = Script("take_lease")
CLAIM_VERSIONS = Script("claim_versions")
STAMP_CHANGES = Script("stamp_changes")
FOLLOW_CATALOGUE = Script("follow_catalogue")
APPLY_INTERACTION = Script("apply_interaction")
COUNT_INTERACTIONS = Script("count_interactions")
ATTRIBUTE_CLICK = Script("attribute_click")
TOKEN_BUCKET = Script("token_bucket")
FINISH_STALE = Script("finish_stale")
MARK_STALE = Script("mark_stale")
TAKE_STALE = Script("take_stale")
RENEW_LEASE = Script("renew_lease")
RELEASE_LEASE = Script("release_lease")
