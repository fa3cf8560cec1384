"""Milvus boolean expressions built from typed clauses, with every value escaped.

No caller ever formats user input into an expression string: values go through `literal`,
field names through an allow-list. (Milvus Lite does not parse `filter_params` templates.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Row = Mapping[str, Any]

# Fields a filter may name; anything else is a programming error, not user input.
FILTERABLE = frozenset(
    {
        "item_id",
        "user_id",
        "category",
        "language",
        "maturity",
        "status",
        "published_at",
        "creator_id",
        "updated_at",
    }
)


class FilterError(ValueError):
    """A filter clause named an unknown field or carried an unusable value."""


def literal(value: str | int | float | bool) -> str:
    """Render one value as a Milvus literal; strings are quoted with backslash escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise FilterError("numbers in filters must be finite")
        return repr(value)
    if not isinstance(value, str):
        raise FilterError(f"unsupported filter value type {type(value).__name__}")
    if any(ord(c) < 32 for c in value):
        raise FilterError("filter strings must not contain control characters")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _field(name: str) -> str:
    if name not in FILTERABLE:
        raise FilterError(f"field {name!r} is not filterable")
    return name


@dataclass
class Filter:
    """A conjunction of clauses; `str(filter)` is the Milvus expression ('' when empty).

    Each clause is kept twice: as Milvus text, and as a predicate over a row (`matches`), so
    an in-process store (the in-memory item index, a candidate set) applies the same filter.
    """

    clauses: list[str] = field(default_factory=list)
    checks: list[Callable[[Row], bool]] = field(default_factory=list, repr=False, compare=False)

    def _add(self, clause: str, check: Callable[[Row], bool]) -> Filter:
        self.clauses.append(clause)
        self.checks.append(check)
        return self

    def where(self, clause: str, check: Callable[[Row], bool]) -> Filter:
        """AND a clause compiled elsewhere from checked input (core.expr: allow-listed fields,
        `literal` values), with its predicate."""
        return self._add(clause, check)

    def matches(self, row: Row) -> bool:
        """Whether a row (field -> value) satisfies every clause, as Milvus would decide."""
        return all(check(row) for check in self.checks)

    def eq(self, name: str, value: str | int) -> Filter:
        return self._add(f"{_field(name)} == {literal(value)}", lambda r: r.get(name) == value)

    def le(self, name: str, value: int | float) -> Filter:
        return self._add(
            f"{_field(name)} <= {literal(value)}",
            lambda r: r.get(name) is not None and r[name] <= value,
        )

    def ge(self, name: str, value: int | float) -> Filter:
        return self._add(
            f"{_field(name)} >= {literal(value)}",
            lambda r: r.get(name) is not None and r[name] >= value,
        )

    def in_(self, name: str, values: Iterable[str | int]) -> Filter:
        vals = list(values)
        if not vals:
            raise FilterError(f"{name} in []: an empty list matches nothing; skip the search")
        allowed = frozenset(vals)
        return self._add(
            f"{_field(name)} in [{', '.join(literal(v) for v in vals)}]",
            lambda r: r.get(name) in allowed,
        )

    def not_in(self, name: str, values: Iterable[str | int]) -> Filter:
        vals = list(values)
        if not vals:
            return self
        banned = frozenset(vals)
        return self._add(
            f"{_field(name)} not in [{', '.join(literal(v) for v in vals)}]",
            lambda r: r.get(name) not in banned,
        )

    def language_family(self, base: str) -> Filter:
        """`language` is `base`, a regional variant of it (`base-xx`) or 'und'."""
        if not (2 <= len(base) <= 3 and base.isascii() and base.isalpha()):
            raise FilterError(f"not a base language code: {base!r}")
        b = base.lower()

        def speaks(r: Row) -> bool:
            lang = str(r.get("language") or "")
            return lang in (b, "und") or lang.startswith(b + "-")

        return self._add(f'language in ["{b}", "und"] or language like "{b}-%"', speaks)

    def __str__(self) -> str:
        return " and ".join(f"({c})" for c in self.clauses)
