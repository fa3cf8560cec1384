"""Business rules for the policy layer: pin, boost and bury, managed by content and ops teams.

* `RuleIn` / `Rule`: the body of `PUT /v1/admin/rules/{rule_id}` and the stored record.
* `RuleStore`: the rules in Redis (`keys.rules`, a hash rule id -> JSON) with a version
  counter (`keys.rules_version`) bumped in the same MULTI as every change. Serving reads them
  through `snapshot()`, an in-process copy re-checked at most once per `refresh_s`.
* `score_deltas`, `pin_positions`, `place_pins`: pure functions the policy stage applies to
  the active rules of a surface (`RuleSnapshot.for_surface`).

Surface names are not checked here (the service checks them against the pipeline's surfaces),
so this module imports nothing from the pipeline or the application state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import redis
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from core.domain import JSON_NUMBER, MULTILINE_PATTERN, Id, Label
from core.errors import InvalidRequest
from core.keys import Keys

log = logging.getLogger(__name__)

RULE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
MAX_RULES = 10_000
MAX_PIN_POSITION = 100
DEFAULT_WEIGHT = 0.5
# The same bound as the published dates of items: far enough for any real campaign.
MAX_EXPIRES_AT = 32_503_680_000

Action = Literal["pin", "boost", "bury"]
SurfaceName = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")]


class RuleFields(BaseModel):
    """What a rule does and where; shared by the request body and the stored record."""

    model_config = ConfigDict(extra="forbid")

    action: Action = Field(
        description="pin: show item_id at `position`; boost / bury: add / subtract `weight` "
        "to the policy score of matching candidates"
    )
    item_id: Id | None = Field(None, description="the item the rule targets (required for pin)")
    category: Label | None = Field(
        None, description="targets every item whose primary (first) category is this one"
    )
    position: Annotated[int, Field(ge=1, le=MAX_PIN_POSITION), JSON_NUMBER] | None = Field(
        None,
        description="pin only (required): 1-based position in the list",
    )
    weight: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False), JSON_NUMBER] | None = Field(
        None,
        description="boost / bury only (default 0.5): added to / subtracted from the policy "
        "score, which runs from 1 (first of the ranked list) to 0 (last); 0.5 moves an item "
        "about half the list",
    )
    surfaces: list[SurfaceName] = Field(
        default_factory=list, max_length=32, description="surfaces it applies on; empty = all"
    )
    expires_at: (
        Annotated[float, Field(gt=0, le=MAX_EXPIRES_AT, allow_inf_nan=False), JSON_NUMBER] | None
    ) = Field(
        None,
        description="unix seconds after which the rule is ignored (and later deleted)",
    )
    note: Annotated[str, StringConstraints(max_length=500, pattern=MULTILINE_PATTERN)] | None = (
        Field(None, description="free text for the people who manage rules")
    )

    @field_validator("surfaces")
    @classmethod
    def _dedupe(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))

    @model_validator(mode="after")
    def _consistent(self) -> RuleFields:
        if (self.item_id is None) == (self.category is None):
            raise ValueError("give exactly one target: item_id or category")
        if self.action == "pin":
            if self.item_id is None:
                raise ValueError("a pin needs item_id (categories cannot be pinned)")
            if self.position is None:
                raise ValueError(f"a pin needs position (1-{MAX_PIN_POSITION})")
            if self.weight is not None:
                raise ValueError("weight applies to boost and bury only, not to pin")
        else:
            if self.position is not None:
                raise ValueError(f"position applies to pin only, not to {self.action}")
            if self.weight is None:
                self.weight = DEFAULT_WEIGHT
        return self


class RuleIn(RuleFields):
    """The body of `PUT /v1/admin/rules/{rule_id}`."""

    @field_validator("expires_at")
    @classmethod
    def _not_past(cls, v: float | None) -> float | None:
        # Only on input: a stored rule that has since expired must still decode.
        if v is not None and v <= time.time():
            raise ValueError(f"expires_at is in the past (now is {int(time.time())})")
        return v


class Rule(RuleFields):
    """A stored rule."""

    # Stored JSON may carry fields a newer release added: older readers skip them.
    model_config = ConfigDict(extra="ignore")

    rule_id: str
    created_at: float
    updated_at: float

    def is_expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def applies_on(self, surface: str) -> bool:
        return not self.surfaces or surface in self.surfaces

    @property
    def delta(self) -> float:
        """What the rule adds to a matching candidate's policy score (0 for a pin)."""
        w = self.weight or 0.0
        return w if self.action == "boost" else -w if self.action == "bury" else 0.0


class RuleOut(Rule):
    expired: bool = Field(False, description="expired rules are ignored and deleted lazily")


class RuleList(BaseModel):
    items: list[RuleOut] = Field(description="by rule id; expired ones included, flagged")
    total: int = Field(description="rules matching, over all pages")
    version: int = Field(description="bumped on every change of any rule")
    next_after: str | None = Field(None, description="pass as ?after= for the next page")


@dataclass(frozen=True)
class RuleSnapshot:
    """All stored rules (expired ones too, until pruned) at one version; -1: never loaded."""

    version: int
    rules: tuple[Rule, ...] = ()

    def active(self, now: float | None = None) -> list[Rule]:
        now = time.time() if now is None else now
        return [r for r in self.rules if not r.is_expired(now)]

    def for_surface(self, surface: str, now: float | None = None) -> list[Rule]:
        """The unexpired rules that apply on `surface`."""
        return [r for r in self.active(now) if r.applies_on(surface)]

    def next_expiry(self) -> float | None:
        return min((r.expires_at for r in self.rules if r.expires_at is not None), default=None)


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

        result: tuple[Rule, bool] = self.r.transaction(txn, key, value_from_callable=True)
        return result

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

        return bool(self.r.transaction(txn, key, value_from_callable=True))

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

        return int(self.r.transaction(txn, key, value_from_callable=True))

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


# --- pure functions for the policy stage (rules: the active ones of one surface) ---


def score_deltas(rules: Sequence[Rule], items: Sequence[tuple[str, str | None]]) -> list[float]:
    """Per (item_id, primary category): the summed weights of matching boosts minus buries.

    Item rules and category rules both apply and add up; pins contribute nothing. Categories
    compare as stored (both sides are normalised, lower-case, by `Label`).
    """
    by_item: dict[str, float] = {}
    by_category: dict[str, float] = {}
    for r in rules:
        if r.action == "pin":
            continue
        if r.item_id is not None:
            by_item[r.item_id] = by_item.get(r.item_id, 0.0) + r.delta
        elif r.category is not None:
            by_category[r.category] = by_category.get(r.category, 0.0) + r.delta
    return [
        by_item.get(item_id, 0.0) + (by_category.get(cat, 0.0) if cat else 0.0)
        for item_id, cat in items
    ]


def pin_positions(rules: Sequence[Rule], allowed: Container[str] | None = None) -> dict[str, int]:
    """item_id -> 0-based position of the pins among `rules` (of items in `allowed`, if given).

    A position or an item claimed by several pins goes to the most recently updated rule
    (ties: the smaller rule id); the other pins are dropped, not moved elsewhere. Pins of
    items outside `allowed` (unsafe for this user, deleted) claim nothing, so an older pin of
    an allowed item at the same position still shows.
    """
    pins = sorted(
        (
            r
            for r in rules
            if r.action == "pin"
            and r.item_id
            and r.position
            and (allowed is None or r.item_id in allowed)
        ),
        key=lambda r: (-r.updated_at, r.rule_id),
    )
    out: dict[str, int] = {}
    taken: set[int] = set()
    for r in pins:
        assert r.item_id is not None and r.position is not None
        pos = r.position - 1
        if r.item_id in out or pos in taken:
            continue
        out[r.item_id] = pos
        taken.add(pos)
    return out


def place_pins(ids: list[str], pins: dict[str, int], limit: int) -> list[str]:
    """`ids` with each pinned id moved (or added) at its position, cut to `limit`.

    The other ids keep their order; a position past the end of the list is clamped to it.
    Pinned ids missing from `ids` are inserted too: the caller has checked they are allowed.
    """
    out = [i for i in ids if i not in pins]
    # Lowest position first: later insertions land at or after it, so it stays in place.
    for item_id, pos in sorted(pins.items(), key=lambda kv: (kv[1], kv[0])):
        out.insert(min(max(pos, 0), len(out)), item_id)
    return out[: max(limit, 0)]
