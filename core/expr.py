"""Filter expressions over items (`filter=` on recommendations): a small grammar, parsed by
recursive descent, compiled twice from one tree: to a Milvus boolean expression (every value
escaped by `core.filters.literal`, field names from an allow-list: never interpolated raw) and
to a Python predicate over an item's serving metadata.

    expr    := term ("or" term)*
    term    := factor ("and" factor)*
    factor  := "not" factor | "(" expr ")" | clause
    clause  := FIELD ("=" | "!=" | "<" | "<=" | ">" | ">=") value
             | FIELD "in" list
             | FIELD "has" value
             | FIELD "has" ("any" | "all") list
    list    := "[" value ("," value)* "]"
    value   := "double" or 'single' quoted string (backslash escapes) | number
             | "true" | "false"  (custom boolean attributes only)
    FIELD   := a field below | "attr." NAME  (a custom attribute the catalogue declares)

Fields: `category` (the primary one), `creator`, `language` (strings: `=`, `!=`, `in`);
`published_at` (unix seconds), `maturity` (numbers: all comparisons, `in`); `categories`,
`tags` (lists: `has`, `has any`, `has all`). `attr.<name>`: a custom attribute, compared as
its literal says (a string, a number, true/false; `has` for a list); the API checks the name
and that type against the declaration (`Node.attributes`). Keywords are lower-case. Errors
say what was expected and point at the character (`FilterSyntaxError.position`, 0-based).

Decided per clause (bench/filters.py, Milvus Lite, 20k items): a scalar clause (`=`, `!=`,
`in`, comparisons) costs nothing extra inside a Milvus search (0.7-0.9x the search without
it: fewer rows pass), a list clause (`has`, `has any`, `has all`) 14-18x, any clause on a
custom attribute (a JSON field) 17-20x; in Python any clause costs 0.2-3 µs a row. So `cheap`
holds the scalar part, handed to Milvus; the whole expression is checked in process on every
candidate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from core.expr_nodes import (
    ATTR_PREFIX,
    KINDS,
    Node,
    Value,
    attr_compare,
    attr_has,
    attr_one_of,
    compare,
    has,
    join,
    negate,
    one_of,
)

MAX_LENGTH = 2000
MAX_DEPTH = 32
MAX_LIST = 100
MAX_NUMBER = 1e15  # well inside INT64 (Milvus refuses larger literals as an error)
# API name -> (item field, kind)
FIELDS: dict[str, tuple[str, str]] = {
    "category": ("category", "str"),
    "creator": ("creator_id", "str"),
    "language": ("language", "str"),
    "published_at": ("published_at", "num"),
    "maturity": ("maturity", "num"),
    "categories": ("categories", "list"),
    "tags": ("tags", "list"),
}
OPS = ("<=", ">=", "!=", "=", "<", ">")
_TOKEN = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<num>-?\d+(?:\.\d+)?)"""
    r"""|(?P<op><=|>=|!=|=|<|>)|(?P<punct>[()\[\],])|(?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[a-z][a-z0-9_]*)?))"""
)


class FilterSyntaxError(ValueError):
    def __init__(self, message: str, position: int, text: str):
        self.position = position
        shown = text[max(0, position - 20) : position + 20]
        super().__init__(f"{message} at character {position + 1}: {shown!r}")


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _tokens(text: str) -> list[_Tok]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            at = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise FilterSyntaxError(f"unexpected character {text[at]!r}", at, text)
        kind = m.lastgroup or ""
        start = m.start(kind)
        out.append(_Tok(kind, m.group(kind), start))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0
        self.used: list[tuple[str, str, int]] = []

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def fail(self, message: str, tok: _Tok | None = None) -> FilterSyntaxError:
        at = (tok or self.peek() or _Tok("", "", len(self.text))).pos
        return FilterSyntaxError(message, at, self.text)

    def take(self, text: str | None = None, kind: str | None = None) -> _Tok:
        tok = self.peek()
        if tok is None or (text is not None and tok.text != text) or (kind and tok.kind != kind):
            want = repr(text) if text else kind
            got = "the end" if tok is None else repr(tok.text)
            raise self.fail(f"expected {want}, found {got}", tok)
        self.i += 1
        return tok

    def at_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "word" and tok.text in words

    def expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH}")
        parts = [self.term()]
        while self.at_word("or"):
            self.i += 1
            parts.append(self.term())
        self.depth -= 1
        return join(parts, "or")

    def term(self) -> Node:
        parts = [self.factor()]
        while self.at_word("and"):
            self.i += 1
            parts.append(self.factor())
        return join(parts, "and")

    def factor(self) -> Node:
        if self.at_word("not"):
            self.i += 1
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.fail(f"nested deeper than {MAX_DEPTH}")
            inner = self.factor()
            self.depth -= 1
            return negate(inner)
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.i += 1
            inner = self.expr()
            self.take(")")
            return inner
        return self.clause()

    def clause(self) -> Node:
        tok = self.take(kind="word")
        if tok.text.startswith(ATTR_PREFIX):
            return self.attribute(tok)
        if tok.text not in FIELDS:
            raise self.fail(f"unknown field {tok.text!r} (fields: {', '.join(FIELDS)})", tok)
        name, kind = FIELDS[tok.text]
        nxt = self.peek()
        if kind == "list":
            if not self.at_word("has"):
                raise self.fail(f"{tok.text} is a list: use `has`, `has any` or `has all`", nxt)
            self.i += 1
            if self.at_word("any", "all"):
                mode = self.take().text
                return has(name, mode, self.values("str"))
            return has(name, "one", [self.value("str")])
        if self.at_word("in"):
            self.i += 1
            return one_of(name, self.values(kind))
        if nxt is None or nxt.kind != "op":
            raise self.fail(f"expected a comparison or `in` after {tok.text}", nxt)
        op = self.take().text
        if kind == "str" and op not in ("=", "!="):
            raise self.fail(f"{tok.text} is text: only `=`, `!=` and `in` compare it", nxt)
        return compare(name, op, self.value(kind))

    def attribute(self, tok: _Tok) -> Node:
        """A clause over a custom attribute: its kind follows from how it is compared."""
        name, nxt = tok.text[len(ATTR_PREFIX) :], self.peek()
        if self.at_word("has"):
            self.i += 1
            mode = self.take().text if self.at_word("any", "all") else "one"
            values = self.values("str") if mode != "one" else [self.value("str")]
            self.used.append((name, "list", tok.pos))
            return attr_has(name, mode, [str(v) for v in values])
        if self.at_word("in"):
            self.i += 1
            ahead = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
            kind = "num" if ahead is not None and ahead.kind == "num" else "str"
            self.used.append((name, KINDS[kind], tok.pos))
            return attr_one_of(name, self.values(kind))
        if nxt is None or nxt.kind != "op":
            raise self.fail(f"expected a comparison, `in` or `has` after {tok.text}", nxt)
        op = self.take().text
        value: Value | bool
        if self.at_word("true", "false"):
            value, kind = self.take().text == "true", "bool"
        else:
            got = self.peek()
            kind = "num" if got is not None and got.kind == "num" else "str"
            value = self.value(kind)
        if kind != "num" and op not in ("=", "!="):
            raise self.fail(f"{tok.text} compared to {KINDS[kind]}: only `=` and `!=`", nxt)
        self.used.append((name, KINDS[kind], tok.pos))
        return attr_compare(name, op, value)

    def values(self, kind: str) -> list[Value]:
        self.take("[")
        out = [self.value(kind)]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.i += 1
            out.append(self.value(kind))
        self.take("]")
        if len(out) > MAX_LIST:
            raise self.fail(f"at most {MAX_LIST} values in a list")
        return out

    def value(self, kind: str) -> Value:
        tok = self.peek()
        if tok is None:
            raise self.fail("expected a value, found the end")
        if kind == "num":
            if tok.kind != "num":
                raise self.fail(f"expected a number, found {tok.text!r}", tok)
            if abs(float(tok.text)) > MAX_NUMBER:
                raise self.fail(f"numbers are at most {MAX_NUMBER:.0e} in size", tok)
            self.i += 1
            return float(tok.text)
        if tok.kind != "str":
            raise self.fail(f"expected a quoted string, found {tok.text!r}", tok)
        if any(ord(c) < 32 for c in tok.text):
            raise self.fail("control characters are not allowed in strings", tok)
        self.i += 1
        return re.sub(r"\\(.)", r"\1", tok.text[1:-1])


def parse(text: str) -> Node:
    """The expression compiled (FilterSyntaxError, with the position, when it is not one)."""
    if len(text) > MAX_LENGTH:
        raise FilterSyntaxError(f"longer than {MAX_LENGTH} characters", MAX_LENGTH, text)
    p = _Parser(text)
    if p.peek() is None:
        raise FilterSyntaxError("empty filter", 0, text)
    node = p.expr()
    if p.peek() is not None:
        raise p.fail(f"expected `and`, `or` or the end, found {p.peek().text!r}")  # type: ignore[union-attr]
    return replace(node, attributes=tuple(p.used))


__all__ = ["FIELDS", "FilterSyntaxError", "Node", "parse"]
