"""The durable event log: append-only JSON lines, partitioned by day, read by training.

Layout: `<root>/dt=YYYY-MM-DD/<writer>.jsonl`, one file per writer (worker) per day, so
writers never share a file. Workers append an event after applying it and before
acknowledging it, so a crash can leave a duplicate line but never a gap; readers drop
duplicates by event id. Redis is not the system of record for history: this log is.

Erasure (`DELETE /v1/users/{id}`) uses an erasure list and a compaction, not a rewrite per
request: rewriting every file of a year of events for each erased user would cost a full pass
each, while one compaction removes every user erased since the last one in one pass.

* `request_erasure` puts the user on the list at once: `<root>/_erasures/<sha256 of id>.json`
  (a digest, not the id) with the time of the erasure. Every reader (`iter_log`) skips that
  user's lines logged up to that time from then on; later lines (the user came back) stay.
* `compact` rewrites each file holding such lines without them (a new file renamed over the
  old one, under the file's lock, so an append never lands in the replaced file) and then
  takes the users off the list. Workers run it `worker.log_compaction_delay_s` after an erasure.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
ERASURES_DIR = "_erasures"


def user_digest(user_id: str) -> str:
    """How the erasure list and the erasure receipts name a user (never the id itself)."""
    return hashlib.sha256(user_id.encode()).hexdigest()


@contextlib.contextmanager
def _locked(path: Path, mode: str) -> Iterator[IO[bytes]]:
    """`path` opened and exclusively locked; reopened if a compaction replaced it meanwhile
    (the lock held was then on the old file, which no reader sees any more)."""
    while True:
        f = open(path, mode)  # noqa: SIM115 - closed below or by the caller's with-block
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            if os.path.exists(path) and os.stat(path).st_ino == os.fstat(f.fileno()).st_ino:
                break
        except BaseException:
            f.close()
            raise
        f.close()
    try:
        yield f
    finally:
        f.close()  # releases the lock


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
        with _locked(self._file(day), "a+b") as f:
            # A crash mid-write leaves a torn last line; start ours on a fresh line.
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write("".join(lines).encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        return len(lines)


def record_user(rec: dict[str, Any]) -> str | None:
    """The user a logged record is about (interactions and profiles), else None."""
    data = rec.get("data")
    user = data.get("user_id") if isinstance(data, dict) else None
    return user if isinstance(user, str) else None


def request_erasure(root: Path, user_id: str, *, before: float) -> None:
    """Put a user on the erasure list: their lines logged up to `before` are skipped by every
    reader now and removed by the next `compact`. Idempotent (a later time wins)."""
    folder = Path(root) / ERASURES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    digest = user_digest(user_id)
    before = max(before, pending_erasures(root).get(digest, {}).get("before", 0.0))
    tmp = folder / f".{digest}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"user": digest, "before": before, "at": time.time()}))
    os.replace(tmp, folder / f"{digest}.json")


def pending_erasures(root: Path) -> dict[str, dict[str, float]]:
    """The erasure list: user digest -> {"before": time, "at": when it was listed}."""
    out: dict[str, dict[str, float]] = {}
    for path in sorted((Path(root) / ERASURES_DIR).glob("*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError):
            d = json.loads(path.read_text())
            out[d["user"]] = {"before": float(d["before"]), "at": float(d["at"])}
    return out


def _erased(rec: dict[str, Any], erasures: dict[str, dict[str, float]]) -> bool:
    user = record_user(rec) if erasures else None
    if user is None:
        return False
    hit = erasures.get(user_digest(user))
    return hit is not None and float(rec.get("t") or 0.0) <= hit["before"]


def _log_files(root: Path) -> list[Path]:
    return [p for part in sorted(Path(root).glob("dt=*")) for p in sorted(part.glob("*.jsonl"))]


def iter_log(root: Path, *, types: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every logged record once (first occurrence of each id), oldest partition first, without
    the lines of users on the erasure list."""
    wanted = set(types) if types is not None else None
    erasures = pending_erasures(root)
    seen: set[str] = set()
    for path in _log_files(root):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # torn line of a crashed writer: the event was redelivered

                if rec["id"] in seen or (wanted is not None and rec["type"] not in wanted):
                    continue
                seen.add(rec["id"])
                if not _erased(rec, erasures):
                    yield rec


@dataclass
class Compaction:
    """What one `compact` did: lines removed, files rewritten, users taken off the list."""

    lines_removed: int = 0
    files_rewritten: int = 0
    users: dict[str, int] = field(default_factory=dict)  # digest -> their lines removed


def compact(root: Path) -> Compaction:
    """Remove the lines of every user on the erasure list from every file, then take them off
    the list. One compaction at a time (a lock file); safe beside appending writers."""
    root = Path(root)
    out = Compaction()
    folder = root / ERASURES_DIR
    if not folder.is_dir():
        return out
    with _locked(folder / ".compact.lock", "a+b"):
        erasures = pending_erasures(root)
        if not erasures:
            return out
        out.users = dict.fromkeys(erasures, 0)
        for path in _log_files(root):
            removed = _rewrite_without(path, erasures, out.users)
            out.lines_removed += removed
            out.files_rewritten += removed > 0
        for digest in erasures:
            (folder / f"{digest}.json").unlink(missing_ok=True)
    return out


def _rewrite_without(path: Path, erasures: dict[str, dict[str, float]], per: dict[str, int]) -> int:
    """Rewrite one file without the erased users' lines (and torn lines); lines removed."""
    with _locked(path, "rb") as f:
        kept: list[bytes] = []
        removed = 0
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                removed += 1  # a torn line: its event was redelivered and logged whole
                continue
            if _erased(rec, erasures):
                removed += 1
                digest = user_digest(record_user(rec) or "")
                per[digest] = per.get(digest, 0) + 1
            else:
                kept.append(line if line.endswith(b"\n") else line + b"\n")
        if removed:
            tmp = path.with_name(f".{path.name}.{os.getpid()}.compact")
            with open(tmp, "wb") as out:
                out.write(b"".join(kept))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)  # under the old file's lock: appenders reopen the new one
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return removed
