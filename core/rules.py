"""Business rules for the policy layer: pin, boost and bury, managed by content and ops teams.

* `RuleIn` / `Rule`: the body of `PUT /v1/admin/rules/{rule_id}` and the stored record.
* `RuleSnapshot`: every stored rule at one version, what serving reads; the rules live in
  Redis behind `core.stores.rules.RuleStore`.
* `score_deltas`, `pin_positions`, `place_pins`: pure functions the policy stage applies to
  the active rules of a surface (`RuleSnapshot.for_surface`).

Surface names are not checked here (the service checks them against the pipeline's surfaces),
so this module imports nothing from the pipeline or the application state.
"""

from __future__ import annotations

import time
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from core.domain import JSON_NUMBER, MULTILINE_PATTERN, Id, Label

RULE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
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
