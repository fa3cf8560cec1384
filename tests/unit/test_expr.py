"""Filter expressions (core/expr.py): the grammar, errors that point at the character, and a
property test: any expression, rendered as text and parsed, decides exactly as the same
predicate written directly in Python."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.expr import FilterSyntaxError, parse

WORDS = ["jazz", "blues", "live", 'say "hi"', "back\\slash", "it's", "x"]
ITEM = st.fixed_dictionaries(
    {
        "category": st.sampled_from(WORDS),
        "creator_id": st.sampled_from(WORDS),
        "language": st.sampled_from(["en", "de", "und"]),
        "published_at": st.integers(0, 2000),
        "maturity": st.integers(0, 18),
        "categories": st.lists(st.sampled_from(WORDS), max_size=3),
        "tags": st.lists(st.sampled_from(WORDS), max_size=3),
        # Custom attributes, each possibly missing (a clause on a missing one is False).
        "attributes": st.fixed_dictionaries(
            {},
            optional={
                "brand": st.sampled_from(WORDS),
                "price": st.integers(0, 2000) | st.sampled_from([2.5, 999.75]),
                "ok": st.booleans(),
                "cols": st.lists(st.sampled_from(WORDS), max_size=3),
            },
        ),
    }
)
# The comparisons written directly in Python (the test's own, not core.expr's).
OPS: dict[str, Any] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
ATTR_KINDS = ["attr_str", "attr_num", "attr_bool", "attr_in", "attr_has"]


def _a(r: Any, name: str) -> Any:
    return r.get("attributes", {}).get(name)


def attribute_clause(kind: str, draw: Any) -> tuple[str, Any]:
    """(text, predicate) of one clause over a custom attribute (False when it is missing)."""
    if kind == "attr_str":
        op, v = draw(st.sampled_from(["=", "!="])), draw(st.sampled_from(WORDS))
        same = op == "="
        return (
            f"attr.brand {op} {_q(v)}",
            lambda r: _a(r, "brand") is not None and ((_a(r, "brand") == v) == same),
        )
    if kind == "attr_num":
        op, v = draw(st.sampled_from(list(OPS))), draw(st.integers(0, 2000))
        return (
            f"attr.price {op} {v}",
            lambda r: _a(r, "price") is not None and OPS[op](_a(r, "price"), v),
        )
    if kind == "attr_bool":
        b = draw(st.booleans())
        return f"attr.ok = {str(b).lower()}", lambda r: _a(r, "ok") is b
    if kind == "attr_in":
        vs = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3))
        text = f"attr.brand in [{', '.join(_q(v) for v in vs)}]"
        return text, lambda r: _a(r, "brand") in vs
    vs = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3))
    mode = draw(st.sampled_from(["", "any ", "all "]))
    if not mode:
        return f"attr.cols has {_q(vs[0])}", lambda r: vs[0] in (_a(r, "cols") or [])
    words = ", ".join(_q(v) for v in vs)
    pick = any if mode == "any " else all
    return (
        f"attr.cols has {mode}[{words}]",
        lambda r: _a(r, "cols") is not None and pick(v in _a(r, "cols") for v in vs),
    )


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def clauses(draw: Any) -> tuple[str, Any]:
    """(text, predicate) of one clause."""
    kind = draw(st.sampled_from(["str", "num", "in", "has", "has_any", "has_all", *ATTR_KINDS]))
    if kind.startswith("attr_"):
        return attribute_clause(kind, draw)
    if kind == "str":
        field, attr = draw(st.sampled_from([("category", "category"), ("creator", "creator_id")]))
        op, v = draw(st.sampled_from(["=", "!="])), draw(st.sampled_from(WORDS))
        same = op == "="
        return f"{field} {op} {_q(v)}", lambda r: (r[attr] == v) == same
    if kind == "num":
        field = draw(st.sampled_from(["published_at", "maturity"]))
        op, v = draw(st.sampled_from(list(OPS))), draw(st.integers(0, 2000))
        return f"{field} {op} {v}", lambda r: OPS[op](r[field], v)
    if kind == "in":
        vs = draw(st.lists(st.sampled_from(["en", "de", "fr"]), min_size=1, max_size=3))
        return f"language in [{', '.join(_q(v) for v in vs)}]", lambda r: r["language"] in vs
    field = draw(st.sampled_from(["categories", "tags"]))
    vs = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3))
    if kind == "has":
        return f"{field} has {_q(vs[0])}", lambda r: vs[0] in r[field]
    words = ", ".join(_q(v) for v in vs)
    if kind == "has_any":
        return f"{field} has any [{words}]", lambda r: any(v in r[field] for v in vs)
    return f"{field} has all [{words}]", lambda r: all(v in r[field] for v in vs)


def expressions(depth: int = 3) -> Any:
    return st.recursive(
        clauses(),
        lambda inner: st.one_of(
            st.tuples(inner, inner, st.sampled_from(["and", "or"])).map(_combine),
            inner.map(lambda e: (f"not ({e[0]})", lambda r, f=e[1]: not f(r))),
            inner.map(lambda e: (f"({e[0]})", e[1])),
        ),
        max_leaves=6,
    )


def _combine(t: Any) -> tuple[str, Any]:
    (a, fa), (b, fb), op = t
    if op == "and":
        return f"({a}) and ({b})", lambda r: fa(r) and fb(r)
    return f"({a}) or ({b})", lambda r: fa(r) or fb(r)


@settings(max_examples=300, deadline=None)
@given(expressions(), st.lists(ITEM, min_size=1, max_size=8))
def test_parsed_expressions_decide_as_the_python_predicate(expr: Any, items: list[Any]) -> None:
    text, predicate = expr
    node = parse(text)
    for item in items:
        assert node.check(item) == predicate(item), (text, item)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_text_parses_or_fails_with_a_position(text: str) -> None:
    try:
        parse(text)
    except FilterSyntaxError as e:
        assert 0 <= e.position <= len(text) and "at character" in str(e)


def test_precedence_and_the_milvus_text() -> None:
    node = parse('category = "a" or category = "b" and not maturity >= 18')
    assert node.milvus == '(category == "a") or ((category == "b") and (not (maturity >= 18)))'
    row = {"category": "b", "maturity": 20}
    assert node.check(row) is False and node.check({**row, "category": "a"}) is True
    quoted = parse('tags has "say \\"hi\\" and \\\\ bye"')
    assert quoted.milvus == 'array_contains(tags, "say \\"hi\\" and \\\\ bye")'
    assert quoted.check({"tags": ['say "hi" and \\ bye']})


@pytest.mark.parametrize(
    ("text", "cheap", "exact"),
    [
        ('category = "a" and tags has "x"', '(category == "a")', False),
        ('category = "a" or tags has "x"', None, False),
        ('not tags has "x"', None, False),
        (
            'not (maturity < 5 or language = "en")',
            'not ((maturity < 5) or (language == "en"))',
            True,
        ),
        (
            'tags has "x" and (maturity > 3 or creator = "c")',
            '((maturity > 3) or (creator_id == "c"))',
            False,
        ),
    ],
)
def test_only_scalar_clauses_go_to_milvus(text: str, cheap: str | None, exact: bool) -> None:
    node = parse(text)
    assert (node.cheap, node.exact) == (cheap, exact)


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ('category > "x"', 10, "only `=`"),
        ('categories = "x"', 12, "use `has`"),
        ("colour = 1", 1, "unknown field"),
        ('(category = "a"', 16, "expected ')'"),
        ('maturity < "x"', 12, "expected a number"),
        ('category = "a" extra', 16, "`and`, `or`"),
        ("category = $", 12, "unexpected character"),
        ("published_at > 99999999999999999999", 16, "at most"),  # Milvus would refuse it
        ("", 1, "empty"),
    ],
)
def test_errors_point_at_the_character(text: str, position: int, words: str) -> None:
    with pytest.raises(FilterSyntaxError) as e:
        parse(text)
    assert e.value.position + 1 == position and words in str(e.value), str(e.value)


def test_attribute_clauses_read_the_attributes_and_name_their_kind() -> None:
    node = parse('attr.brand = "acme" and not attr.price < 10 or attr.ok = true')
    assert [(n, k) for n, k, _ in node.attributes] == [
        ("brand", "string"),
        ("price", "number"),
        ("ok", "boolean"),
    ]
    assert node.milvus.startswith(
        '(((exists attributes["brand"] and attributes["brand"] == "acme"))'
    )
    assert node.check({"attributes": {"brand": "acme", "price": 12}})
    assert not node.check({"attributes": {"brand": "acme", "price": 2}})
    assert node.check({"attributes": {"ok": True}}) and not node.check({})
    assert parse("not attr.price = 3").check({})  # missing: the clause is False, so not is True
    with pytest.raises(FilterSyntaxError, match="only `=` and `!=`"):
        parse('attr.brand < "x"')
