"""The ``meta.json`` beside every saved model: its format name and version, checked on load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_meta(root: Path, meta: dict[str, Any]) -> None:
    """Write ``meta`` as ``root/meta.json``."""
    (root / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


def read_meta(path: Path, fmt: str, version: int) -> dict[str, Any]:
    """Read a ``meta.json``, refusing another format or version."""
    meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format") != fmt:
        raise ValueError(f"{path}: not a {fmt} file (format={meta.get('format')!r})")
    if meta.get("version") != version:
        raise ValueError(f"{path}: unsupported {fmt} version {meta.get('version')!r}")
    return meta
