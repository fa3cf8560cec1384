"""Size limits on the project's code: no module over 400 lines, no function over 60 (issue 14).

ruff already caps complexity (C901 at 12) and branches and statements per function (PLR0912,
PLR0915); these two limits are what it does not measure. A module that grows past the limit is
split into modules of one stage or one concern each; a function, into well-named steps.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "embeddings", "serving", "indexing", "training", "app", "vantage")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60  # from the `def` line to the last line of the body

# Functions allowed over the limit, as "path: qualified name", each with the reason. Keep it
# empty: an entry is a debt with a named owner, not a way to make the test pass.
FUNCTION_ALLOW_LIST: set[str] = set()


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _functions(
    node: ast.AST, prefix: str = ""
) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function and method under `node`, nested ones included, by qualified name."""
    out: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            out.append((prefix + child.name, child))
            out.extend(_functions(child, f"{prefix}{child.name}.<locals>."))
        elif isinstance(child, ast.ClassDef):
            out.extend(_functions(child, f"{prefix}{child.name}."))
        else:
            out.extend(_functions(child, prefix))
    return out


def _function_lengths() -> dict[str, int]:
    lengths: dict[str, int] = {}
    for path in _modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for name, fn in _functions(tree):
            assert fn.end_lineno is not None
            lengths[f"{path.relative_to(ROOT).as_posix()}: {name}"] = fn.end_lineno - fn.lineno + 1
    return lengths


def test_the_walk_finds_the_packages() -> None:
    # An empty walk (a moved package, a wrong root) would pass every limit.
    found = {p.relative_to(ROOT).parts[0] for p in _modules()}
    assert found == set(PACKAGES)
    assert len(_function_lengths()) > 500


def test_no_module_is_over_400_lines() -> None:
    over = {
        path.relative_to(ROOT).as_posix(): n
        for path in _modules()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not over, f"modules over {MAX_MODULE_LINES} lines (split them by stage): {over}"


def test_no_function_is_over_60_lines() -> None:
    over = {
        name: n
        for name, n in _function_lengths().items()
        if n > MAX_FUNCTION_LINES and name not in FUNCTION_ALLOW_LIST
    }
    assert not over, f"functions over {MAX_FUNCTION_LINES} lines (extract well-named steps): {over}"


def test_the_allow_list_names_only_functions_still_over_the_limit() -> None:
    # A function that got shorter, or was renamed or removed, leaves the list with it.
    lengths = _function_lengths()
    stale = {
        name: lengths.get(name)
        for name in FUNCTION_ALLOW_LIST
        if lengths.get(name, 0) <= MAX_FUNCTION_LINES
    }
    assert not stale, f"remove these from FUNCTION_ALLOW_LIST: {stale}"
