"""The durable event log: append-only JSON lines, partitioned by day, read by training.

Layout: `<root>/dt=YYYY-MM-DD/<writer>.jsonl`, one file per writer (worker) per day, so
writers never share a file. Workers append an event after applying it and before
acknowledging it, so a crash can leave a duplicate line but never a gap; readers drop
duplicates by event id. Redis is not the system of record for history: this log is.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class EventLog:
    def __init__(self, root: Path, writer: str):
        self.root = Path(root)
        self.writer = _SAFE.sub("_", writer) or "writer"

    def _file(self, day: str) -> Path:
        part = self.root / f"dt={day}"
        part.mkdir(parents=True, exist_ok=True)
        return part / f"{self.writer}.jsonl"

    def append(self, records: Iterable[dict[str, Any]], *, now: float | None = None) -> int:
        """Append records (each with an `id` and a `type`) durably; returns how many."""
        lines = [json.dumps(r, separators=(",", ":")) + "\n" for r in records]
        if not lines:
            return 0
        day = time.strftime("%Y-%m-%d", time.gmtime(time.time() if now is None else now))
        path = self._file(day)
        with open(path, "a+b") as f:
            # A crash mid-write leaves a torn last line; start ours on a fresh line.
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write("".join(lines).encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        return len(lines)


def iter_log(root: Path, *, types: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every logged record once (first occurrence of each id), oldest partition first."""
    wanted = set(types) if types is not None else None
    seen: set[str] = set()
    for part in sorted(Path(root).glob("dt=*")):
        for path in sorted(part.glob("*.jsonl")):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue  # torn line of a crashed writer: the event was redelivered

                    if rec["id"] in seen or (wanted is not None and rec["type"] not in wanted):
                        continue
                    seen.add(rec["id"])
                    yield rec
