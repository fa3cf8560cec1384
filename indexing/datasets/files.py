"""Reading the files of a dataset: headed CSV, JSON lines, and cheap line counts."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from indexing.datasets.records import line_error


def count_lines(path: Path, header: bool = False) -> int:
    """Count non-blank lines; assumes no embedded newlines, which is fine for progress bars."""
    if not path.is_file():
        return 0
    with path.open("rb") as handle:
        total = sum(1 for line in handle if line.strip())
    return max(total - 1, 0) if header else total


def _read_csv_header(
    reader: Iterator[list[str]], path: Path, required: tuple[str, ...]
) -> dict[str, int]:
    """Map column name -> index, failing loudly when a required column is missing."""
    header = next(reader, None)
    if header is None:
        raise line_error(path, 1, "empty file, expected a header row")
    columns = {name.strip().lstrip("\ufeff"): i for i, name in enumerate(header)}
    missing = [c for c in required if c not in columns]
    if missing:
        raise line_error(path, 1, f"header is missing column(s) {', '.join(missing)}; got {header}")
    return columns


def csv_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row-as-dict) for a headed UTF-8 CSV, skipping blank rows."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        columns = _read_csv_header(reader, path, required)
        width = len(columns)
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != width:
                raise line_error(path, reader.line_num, f"expected {width} fields, got {len(row)}")
            yield reader.line_num, {name: row[i] for name, i in columns.items()}


def jsonl_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line of a JSON-lines file."""
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise line_error(path, lineno, f"invalid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise line_error(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, line) for each non-blank line of a latin-1 file (MovieLens 100K)."""
    with path.open(encoding="latin-1") as handle:
        for lineno, line in enumerate(handle, start=1):
            if line.strip():
                yield lineno, line
