"""Custom item attributes against the catalogue's declaration (`VANTAGE_CATALOG__ATTRIBUTES`:
name -> string, number, boolean or list): what an item may carry, and what a filter may ask."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DECLARE = "declare it in VANTAGE_CATALOG__ATTRIBUTES"


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "list"
    return "string"


def item_errors(attributes: Mapping[str, Any], declared: Mapping[str, str]) -> list[str]:
    """What is wrong with an item's attributes (empty: nothing)."""
    out = []
    for name, value in attributes.items():
        want = declared.get(name)
        if want is None:
            known = ", ".join(sorted(declared)) or "none is declared"
            out.append(f"attribute {name!r} is not declared ({known}); {DECLARE}")
        elif kind_of(value) != want:
            out.append(f"attribute {name!r} is a {want}, got a {kind_of(value)}")
    return out


def filter_errors(
    used: tuple[tuple[str, str, int], ...], declared: Mapping[str, str]
) -> list[tuple[str, int]]:
    """(message, 0-based position) for each attribute a filter reads that is not declared, or
    compares as another type than declared."""
    out = []
    for name, kind, pos in used:
        want = declared.get(name)
        if want is None:
            out.append((f"attr.{name} is not a declared attribute; {DECLARE}", pos))
        elif want != kind:
            out.append((f"attr.{name} is a {want}, compared as a {kind}", pos))
    return out
