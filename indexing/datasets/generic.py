"""The generic layout: `items.jsonl`, optional `interactions.csv`, optional `users.jsonl`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from indexing.datasets.files import count_lines, csv_rows, jsonl_objects
from indexing.datasets.records import (
    ITEM_STATUSES,
    MAX_MATURITY,
    Record,
    as_id,
    as_int,
    as_optional_int,
    as_optional_str,
    as_str,
    as_str_list,
    dedupe,
    interaction,
    line_error,
    parse_timestamp,
)


def generic_item(obj: dict[str, Any]) -> Record:
    """Validate one items.jsonl object and fill the documented defaults."""
    for key in ("item_id", "title"):
        if key not in obj:
            raise ValueError(f"missing required field {key!r}")
    maturity = as_int(obj.get("maturity", 0), "maturity")
    if not 0 <= maturity <= MAX_MATURITY:
        raise ValueError(f"maturity must be within 0..{MAX_MATURITY}, got {maturity}")
    status = as_str(obj.get("status", "active"), "status").strip().lower()
    if status not in ITEM_STATUSES:
        raise ValueError(f"status must be one of {sorted(ITEM_STATUSES)}, got {status!r}")
    published = obj.get("published_at", 0)
    return {
        "item_id": as_id(obj["item_id"], "item_id"),
        "title": as_str(obj["title"], "title").strip(),
        "description": as_str(obj.get("description", ""), "description").strip(),
        "categories": dedupe(
            [c.lower() for c in as_str_list(obj.get("categories", []), "categories")]
        ),
        "tags": dedupe([t.lower() for t in as_str_list(obj.get("tags", []), "tags")]),
        "language": (as_str(obj.get("language") or "und", "language").strip().lower() or "und"),
        "regions": dedupe([r.upper() for r in as_str_list(obj.get("regions", []), "regions")]),
        "maturity": maturity,
        "published_at": 0 if published in (None, "") else int(parse_timestamp(published)),
        "status": status,
        "creator_id": str(obj.get("creator_id") or "").strip(),
    }


def generic_user(obj: dict[str, Any]) -> Record:
    """Validate one users.jsonl object."""
    if "user_id" not in obj:
        raise ValueError("missing required field 'user_id'")
    prefs = obj.get("preferences") or {}
    if not isinstance(prefs, dict):
        raise ValueError(f"preferences must be an object, got {prefs!r}")
    language = as_optional_str(obj.get("language"), "language")
    region = as_optional_str(obj.get("region"), "region")
    categories = as_str_list(prefs.get("categories", []), "preferences.categories")
    return {
        "user_id": as_id(obj["user_id"], "user_id"),
        "language": language.lower() if language else None,
        "region": region.upper() if region else None,
        "birth_year": as_optional_int(obj.get("birth_year"), "birth_year"),
        "preferences": {"categories": dedupe([c.lower() for c in categories])},
    }


class GenericSource:
    """items.jsonl + interactions.csv + users.jsonl (the last two optional)."""

    INTERACTION_COLUMNS = ("user_id", "item_id", "type", "timestamp")

    def __init__(self, root: Path) -> None:
        self.items_path = root / "items.jsonl"
        self.interactions_path = root / "interactions.csv"
        self.users_path = root / "users.jsonl"

    def iter_items(self) -> Iterator[Record]:
        seen: set[str] = set()
        for lineno, obj in jsonl_objects(self.items_path):
            try:
                item = generic_item(obj)
            except ValueError as exc:
                raise line_error(self.items_path, lineno, str(exc)) from None
            if item["item_id"] in seen:
                raise line_error(self.items_path, lineno, f"duplicate item_id {item['item_id']!r}")
            seen.add(item["item_id"])
            yield item

    def iter_interactions(self) -> Iterator[Record]:
        if not self.interactions_path.is_file():
            return
        for lineno, row in csv_rows(self.interactions_path, self.INTERACTION_COLUMNS):
            try:
                rec = interaction(
                    row["user_id"],
                    row["item_id"],
                    row["type"],
                    row.get("value", ""),
                    row["timestamp"],
                )
                if (row.get("device") or "").strip():  # optional; validated with the record
                    rec["device"] = row["device"].strip().lower()
                yield rec
            except ValueError as exc:
                raise line_error(self.interactions_path, lineno, str(exc)) from None

    def iter_users(self) -> Iterator[Record]:
        if not self.users_path.is_file():
            return
        for lineno, obj in jsonl_objects(self.users_path):
            try:
                yield generic_user(obj)
            except ValueError as exc:
                raise line_error(self.users_path, lineno, str(exc)) from None

    def count_items(self) -> int:
        return count_lines(self.items_path)

    def count_interactions(self) -> int:
        return count_lines(self.interactions_path, header=True)
