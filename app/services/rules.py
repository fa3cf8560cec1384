"""Business rules: surface checks and the API views of the rule store."""

from __future__ import annotations

import time
from collections.abc import Iterable

from app.state import AppState
from core.errors import InvalidRequest, NotFound
from core.rules import Rule, RuleIn, RuleList, RuleOut


def check_surfaces(state: AppState, field: str, surfaces: Iterable[str]) -> None:
    """422 naming the valid surfaces if any of `surfaces` is not one of them."""
    valid = sorted(state.settings.surfaces)
    unknown = [s for s in surfaces if s not in valid]
    if unknown:
        raise InvalidRequest(
            f"{field}: unknown surface {', '.join(map(repr, unknown))}; "
            f"valid surfaces: {', '.join(valid)}",
            details={"unknown": unknown, "valid": valid},
        )


def _out(rule: Rule, now: float) -> RuleOut:
    return RuleOut(**rule.model_dump(), expired=rule.is_expired(now))


def check_item(state: AppState, item_id: str) -> None:
    """422 if the item a rule targets does not exist (or was deleted): such a rule would be
    stored and silently do nothing. Hidden items are known: their rules apply once shown."""
    rows = state.items.get([item_id], fields=("status",))
    if item_id not in rows or state.catalogue.tombstoned([item_id]):
        raise InvalidRequest(
            f"item_id: item {item_id!r} does not exist; add it to the catalogue first "
            "(PUT /v1/items/{item_id}) or target a category",
            details={"item_id": item_id},
        )


def put_rule(state: AppState, rule_id: str, body: RuleIn) -> tuple[RuleOut, bool]:
    """Create or replace a rule; returns (the rule, True if it was created)."""
    check_surfaces(state, "surfaces", body.surfaces)
    if body.item_id is not None:
        check_item(state, body.item_id)
    rule, created = state.rules.put(rule_id, body)
    return _out(rule, time.time()), created


def list_rules(
    state: AppState,
    surface: str | None = None,
    *,
    limit: int = 100,
    after: str | None = None,
) -> RuleList:
    """A page of stored rules by id (expired ones flagged), or of those that apply on `surface`.

    `after` is the previous page's `next_after`; `total` counts every match, all pages.
    """
    if surface is not None:
        check_surfaces(state, "surface", [surface])
    version, rules = state.rules.list()
    now = time.time()
    matching = [r for r in rules if surface is None or r.applies_on(surface)]  # by id
    page = [r for r in matching if after is None or r.rule_id > after][: limit + 1]
    more = len(page) > limit
    items = [_out(r, now) for r in page[:limit]]
    return RuleList(
        items=items,
        total=len(matching),
        version=version,
        next_after=items[-1].rule_id if more else None,
    )


def get_rule(state: AppState, rule_id: str) -> RuleOut:
    rule = state.rules.get(rule_id)
    if rule is None:
        raise NotFound(f"no rule {rule_id!r}")
    return _out(rule, time.time())


def delete_rule(state: AppState, rule_id: str) -> None:
    if not state.rules.delete(rule_id):
        raise NotFound(f"no rule {rule_id!r}")
