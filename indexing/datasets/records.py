"""Canonical record fields: the coercers every loader validates raw cells with.

Coercers raise ValueError; the loaders re-raise it as a DatasetError naming file and line.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Record = dict[str, Any]

INTERACTION_TYPES: frozenset[str] = frozenset(
    {"view", "click", "watch", "like", "dislike", "skip", "purchase", "rate"}
)
ITEM_STATUSES: frozenset[str] = frozenset({"active", "hidden"})
MAX_MATURITY = 18


class DatasetError(ValueError):
    """Raised when a dataset directory is missing files or holds malformed records."""


def line_error(path: Path, line: int, message: str) -> DatasetError:
    """A DatasetError pointing at ``path``, line ``line``."""
    return DatasetError(f"{path}: line {line}: {message}")


def parse_timestamp(raw: str | int | float) -> float:
    """Parse unix seconds or an ISO-8601 string (naive = UTC) into unix seconds."""
    if isinstance(raw, bool):
        raise ValueError(f"invalid timestamp {raw!r}")
    if isinstance(raw, int | float):
        value = float(raw)
    else:
        text = raw.strip()
        try:
            value = float(text)
        except ValueError:
            value = _parse_iso(text)
    if not math.isfinite(value):
        raise ValueError(f"invalid timestamp {raw!r}")
    return value


def _parse_iso(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"invalid timestamp {text!r} (expected unix seconds or ISO-8601)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def as_id(value: Any, field: str) -> str:
    """A non-empty string or integer id, as a stripped string."""
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        raise ValueError(f"{field} must be a non-empty string or integer, got {value!r}")
    return str(value).strip()


def as_str(value: Any, field: str) -> str:
    """``value`` itself when it is a string."""
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string, got {value!r}")
    return value


def as_str_list(value: Any, field: str) -> list[str]:
    """A list of strings, stripped, blanks dropped."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{field} must be a list of strings, got {value!r}")
    return [v.strip() for v in value if v.strip()]


def as_int(value: Any, field: str) -> int:
    """An integer from an int, a whole float or a string of digits (never a bool)."""
    if isinstance(value, bool):
        raise ValueError(f"{field} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError(f"{field} must be an integer, got {value!r}")


def as_optional_int(value: Any, field: str) -> int | None:
    """``as_int``, or None for a missing or empty value."""
    return None if value is None or value == "" else as_int(value, field)


def as_optional_str(value: Any, field: str) -> str | None:
    """A stripped string, or None for a missing or empty value."""
    return None if value is None or value == "" else as_str(value, field).strip()


def dedupe(values: list[str]) -> list[str]:
    """``values`` without repeats, first occurrence kept."""
    # Order matters (first category is the primary one), so no set().
    return list(dict.fromkeys(values))


def interaction(user_id: str, item_id: str, kind: str, value: str, timestamp: str) -> Record:
    """Build an INTERACTION from raw CSV cells."""
    kind = kind.strip().lower()
    if kind not in INTERACTION_TYPES:
        raise ValueError(f"type must be one of {sorted(INTERACTION_TYPES)}, got {kind!r}")
    parsed_value: float | None = None
    if value.strip():
        try:
            parsed_value = float(value)
        except ValueError:
            raise ValueError(f"value must be a number or empty, got {value!r}") from None
        if not math.isfinite(parsed_value):
            raise ValueError(f"value must be finite, got {value!r}")
    return {
        "user_id": as_id(user_id, "user_id"),
        "item_id": as_id(item_id, "item_id"),
        "type": kind,
        "value": parsed_value,
        "timestamp": parse_timestamp(timestamp),
    }


def movie(
    item_id: str, title: str, categories: list[str], tags: list[str], published: int
) -> Record:
    """An ITEM for a MovieLens movie: no description, language, regions, rating or creator."""
    return {
        "item_id": item_id,
        "title": title,
        # MovieLens has no descriptions; title, genres and tags are embedded from their own fields.
        "description": "",
        "categories": categories,
        "tags": tags,
        "language": "und",
        "regions": [],
        "maturity": 0,
        "published_at": published,
        "status": "active",
        "creator_id": "",
    }
