"""The business rules in Redis, and the in-process snapshot serving reads on every request.

`keys.rules` is a hash rule id -> JSON, with a version counter (`keys.rules_version`) bumped
in the same MULTI as every change. Serving reads the rules through `RuleStore.snapshot()`, an
in-process copy re-checked at most once per `refresh_s`; the admin API reads and writes Redis
directly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import redis
from pydantic import ValidationError

from core.errors import InvalidRequest
from core.keys import Keys
from core.rules import Rule, RuleIn, RuleSnapshot

log = logging.getLogger(__name__)

MAX_RULES = 10_000

T = TypeVar("T")


def _transaction(r: redis.Redis, key: str, txn: Callable[[Any], T]) -> T:
    """Run ``txn`` under WATCH ``key`` (retried on a conflict) and return its value.

    redis-py annotates the callable as returning None and the result as the pipeline's, which
    is wrong with value_from_callable=True: the casts restore what it does.
    """
    func = cast(Callable[[Any], None], txn)
    return cast(T, r.transaction(func, key, value_from_callable=True))


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _decode(rule_id: Any, raw: Any) -> Rule | None:
    try:
        return Rule.model_validate_json(raw)
    except (ValidationError, ValueError) as e:
        # One bad record (hand-edited, or from an incompatible release) must not hide the rest.
        log.warning("skipping unreadable rule %r: %s", _s(rule_id), e)
        return None


class RuleLimitReached(InvalidRequest):
    code = "too_many_rules"


class RuleStore:
    """Rules in Redis, and the in-process snapshot serving reads on every request."""

    def __init__(
        self, r: redis.Redis, keys: Keys, *, refresh_s: float = 1.0, max_rules: int = MAX_RULES
    ):
        self.r = r
        self.keys = keys
        self.refresh_s = refresh_s
        self.max_rules = max_rules
        self._snap: RuleSnapshot | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()
        self._down = False

    # --- admin reads and writes (straight to Redis) ---

    def get(self, rule_id: str) -> Rule | None:
        raw = self.r.hget(self.keys.rules, rule_id)
        return None if raw is None else _decode(rule_id, raw)

    def list(self) -> tuple[int, list[Rule]]:
        """(version, every stored rule by id), read together."""
        pipe = self.r.pipeline(transaction=True)
        pipe.get(self.keys.rules_version)
        pipe.hgetall(self.keys.rules)
        version, rows = pipe.execute()
        rules = [r for k, v in rows.items() if (r := _decode(k, v)) is not None]
        return int(version or 0), sorted(rules, key=lambda r: r.rule_id)

    def version(self) -> int:
        return int(self.r.get(self.keys.rules_version) or 0)

    def put(self, rule_id: str, body: RuleIn, *, now: float | None = None) -> tuple[Rule, bool]:
        """Create or replace a rule; returns (the rule, True if it was created)."""
        now = time.time() if now is None else now
        try:
            return self._put(rule_id, body, now)
        except RuleLimitReached:
            # Expired rules still count until pruned: prune, then try once more.
            if not self.prune(now):
                raise
            return self._put(rule_id, body, now)

    def _put(self, rule_id: str, body: RuleIn, now: float) -> tuple[Rule, bool]:
        key = self.keys.rules

        def txn(pipe: Any) -> tuple[Rule, bool]:
            old_raw = pipe.hget(key, rule_id)
            if old_raw is None and pipe.hlen(key) >= self.max_rules:
                raise RuleLimitReached(
                    f"there are already {self.max_rules} rules (the maximum); delete unused "
                    "ones before adding more"
                )
            old = None if old_raw is None else _decode(rule_id, old_raw)
            rule = Rule(
                **body.model_dump(),
                rule_id=rule_id,
                created_at=old.created_at if old is not None else now,
                updated_at=now,
            )
            pipe.multi()
            pipe.hset(key, rule_id, rule.model_dump_json())
            pipe.incr(self.keys.rules_version)
            return rule, old_raw is None

        return _transaction(self.r, key, txn)

    def delete(self, rule_id: str) -> bool:
        """Delete a rule; False if there was none."""
        key = self.keys.rules

        def txn(pipe: Any) -> bool:
            existed = bool(pipe.hexists(key, rule_id))
            pipe.multi()
            if existed:
                pipe.hdel(key, rule_id)
                pipe.incr(self.keys.rules_version)
            return existed

        return _transaction(self.r, key, txn)

    def prune(self, now: float | None = None, ids: Sequence[str] | None = None) -> int:
        """Delete the rules (all, or these ids) expired by `now`; returns how many."""
        if ids is not None and not ids:
            return 0
        now = time.time() if now is None else now
        key = self.keys.rules

        def txn(pipe: Any) -> int:
            # Re-read under WATCH: a rule replaced meanwhile (with a later expiry) is kept.
            if ids is None:
                rows = list(pipe.hgetall(key).items())
            else:
                rows = list(zip(ids, pipe.hmget(key, list(ids)), strict=True))
            gone = [
                _s(k)
                for k, raw in rows
                if raw is not None and (r := _decode(k, raw)) is not None and r.is_expired(now)
            ]
            pipe.multi()
            if gone:
                pipe.hdel(key, *gone)
                pipe.incr(self.keys.rules_version)
            return len(gone)

        return _transaction(self.r, key, txn)

    # --- serving ---

    def snapshot(self, now: float | None = None) -> RuleSnapshot:
        """The rules as of at most `refresh_s` ago; never raises once one was loaded.

        One GET of the version per `refresh_s` (the hash is re-read only when it changed), by
        one thread at a time: the others keep getting the current snapshot meanwhile. With
        Redis down, the last snapshot is served (an empty one, version -1, if there is none).
        """
        now = time.time() if now is None else now
        snap = self._snap
        if snap is not None and self._fresh(now):
            return snap
        if not self._lock.acquire(blocking=snap is None):
            assert snap is not None
            return snap
        try:
            if self._snap is not None and self._fresh(now):
                return self._snap  # another thread refreshed it while we waited
            # Set before trying: a down Redis is asked once per refresh_s, not per request.
            self._checked_at = now
            try:
                self._snap = self._refresh(self._snap, now)
            except Exception as e:
                # Serving must not fail on rules: Redis down (or anything unforeseen, logged
                # with its traceback) keeps the last snapshot, said once until it recovers.
                if not self._down:
                    log.warning(
                        "rules: cannot refresh (%s: %s); serving the last snapshot",
                        type(e).__name__,
                        e,
                        exc_info=not isinstance(e, redis.RedisError),
                    )
                    self._down = True
                if self._snap is None:
                    self._snap = RuleSnapshot(version=-1)
            else:
                if self._down:
                    log.info("rules: refreshed again (version %d)", self._snap.version)
                    self._down = False
            return self._snap
        finally:
            self._lock.release()

    def _fresh(self, now: float) -> bool:
        # A clock that went backwards counts as stale.
        return 0 <= now - self._checked_at < self.refresh_s

    def _refresh(self, old: RuleSnapshot | None, now: float) -> RuleSnapshot:
        if old is not None and old.version == self.version():
            due = old.next_expiry()
            if due is None or due > now:
                return old
            # A rule expired: deleting it bumps the version, so every replica re-reads and
            # result caches keyed by the version stop serving lists built with it.
            self.prune(now, [r.rule_id for r in old.rules if r.is_expired(now)])
        version, rules = self.list()
        return RuleSnapshot(version=version, rules=tuple(rules))
