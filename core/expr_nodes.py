"""The compiled form of a filter expression (core/expr.py parses into it): one node per
(sub)expression, holding its Milvus text, its Python predicate and the part of it worth handing
to Milvus; and the builders of each clause kind, custom attributes included."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.filters import literal

Value = str | float
Row = Mapping[str, Any]


@dataclass(frozen=True)
class Node:
    """A compiled (sub)expression: its Milvus text, its predicate, and the part worth handing
    to Milvus (`cheap`): a condition every matching item meets, made only of clauses Milvus
    evaluates cheaply (None: none), equal to the whole when `exact`."""

    milvus: str
    check: Callable[[Row], bool]
    cheap: str | None = None
    exact: bool = False
    # On the whole expression: each custom attribute it reads, (name, kind, position) with
    # kind string, number, boolean or list (the API checks them against the declared ones).
    attributes: tuple[tuple[str, str, int], ...] = ()


def negate(inner: Node) -> Node:
    check = inner.check
    # Only an exact condition can be negated: "not (a necessary condition)" is not one.
    cheap = f"not ({inner.cheap})" if inner.exact and inner.cheap else None
    return Node(f"not ({inner.milvus})", lambda r: not check(r), cheap, inner.exact)


def join(parts: Sequence[Node], op: str) -> Node:
    if len(parts) == 1:
        return parts[0]
    text = f" {op} ".join(f"({p.milvus})" for p in parts)
    checks = [p.check for p in parts]
    exact = all(p.exact for p in parts)
    if op == "and":  # the cheap conjuncts are each necessary, so together too
        known = [p.cheap for p in parts if p.cheap]
        cheap = " and ".join(f"({c})" for c in known) if known else None
        return Node(text, lambda r: all(c(r) for c in checks), cheap, exact)
    # Either branch may match: a cheap condition only if every branch has one.
    either = [p.cheap for p in parts]
    cheap = " or ".join(f"({c})" for c in either) if all(either) else None
    return Node(text, lambda r: any(c(r) for c in checks), cheap, exact and cheap is not None)


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def compare(name: str, op: str, value: Value) -> Node:
    milvus = {"=": "=="}.get(op, op)
    text = f"{name} {milvus} {literal(_lit(value))}"
    if isinstance(value, float):
        test = COMPARE[op]
        return Node(text, lambda r: test(_num(r.get(name, 0)), value), text, True)
    if op == "=":
        return Node(text, lambda r: str(r.get(name) or "") == value, text, True)
    return Node(text, lambda r: str(r.get(name) or "") != value, text, True)


def one_of(name: str, values: list[Value]) -> Node:
    text = f"{name} in [{', '.join(literal(_lit(v)) for v in values)}]"
    if values and isinstance(values[0], float):
        nums = {float(v) for v in values}
        return Node(text, lambda r: _num(r.get(name, 0)) in nums, text, True)
    strs = {str(v) for v in values}
    return Node(text, lambda r: str(r.get(name) or "") in strs, text, True)


def has(name: str, mode: str, values: list[Value]) -> Node:
    want = [str(v) for v in values]
    if mode == "one":
        text = f"array_contains({name}, {literal(want[0])})"
    else:
        fn = "array_contains_any" if mode == "any" else "array_contains_all"
        text = f"{fn}({name}, [{', '.join(literal(v) for v in want)}])"

    def check(r: Row) -> bool:
        have = {str(x) for x in (r.get(name) or [])}
        return all(v in have for v in want) if mode == "all" else any(v in have for v in want)

    return Node(text, check)


# Custom attributes live in the items' `attributes` JSON field. A clause is False for an item
# without the attribute (or with another type): in Milvus each is guarded by `exists`, so
# `not` keeps two-valued logic (Milvus leaves a comparison with a missing key unknown). In
# Milvus Lite a JSON clause costs 17-20x the search (bench/filters.py), like a list clause:
# none is handed to Milvus (`cheap` None); all are checked in process.
ATTR_PREFIX = "attr."
KINDS = {"str": "string", "num": "number", "bool": "boolean"}


def _path(name: str) -> str:
    return f'attributes["{name}"]'  # name matched [a-z][a-z0-9_]*: nothing to escape


def _attr(r: Row, name: str) -> Any:
    return (r.get("attributes") or {}).get(name)


def _typed(v: Any, sample: Value | bool) -> bool:
    if isinstance(sample, bool):
        return isinstance(v, bool)
    if isinstance(sample, float):
        return isinstance(v, int | float) and not isinstance(v, bool)
    return isinstance(v, str)


def attr_compare(name: str, op: str, value: Value | bool) -> Node:
    path = _path(name)
    text = f"(exists {path} and {path} { ({'=': '=='}.get(op, op)) } {literal(_lit(value))})"
    test = COMPARE[op]

    def check(r: Row) -> bool:
        v = _attr(r, name)
        return v is not None and _typed(v, value) and test(v, value)

    return Node(text, check)  # JSON clauses cost as much as list ones in Milvus Lite


def attr_one_of(name: str, values: list[Value]) -> Node:
    path = _path(name)
    either = " or ".join(f"{path} == {literal(_lit(v))}" for v in values)
    text = f"(exists {path} and ({either}))"

    def check(r: Row) -> bool:
        v = _attr(r, name)
        return v is not None and _typed(v, values[0]) and v in values

    return Node(text, check)


def attr_has(name: str, mode: str, want: list[str]) -> Node:
    path = _path(name)
    if mode == "one":
        inner = f"json_contains({path}, {literal(want[0])})"
    else:
        fn = "json_contains_any" if mode == "any" else "json_contains_all"
        inner = f"{fn}({path}, [{', '.join(literal(v) for v in want)}])"
    text = f"(exists {path} and {inner})"

    def check(r: Row) -> bool:
        v = _attr(r, name)
        if not isinstance(v, list):
            return False
        have = {str(x) for x in v}
        return all(w in have for w in want) if mode == "all" else any(w in have for w in want)

    return Node(text, check)


def _lit(value: Value | bool) -> str | int | float | bool:
    """Whole numbers as integers (the numeric fields are INT64 in Milvus)."""
    if isinstance(value, float) and not isinstance(value, bool) and value.is_integer():
        return int(value)
    return value
