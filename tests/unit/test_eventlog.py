"""The durable event log's erasure list and compaction, beside writers that keep appending."""

from __future__ import annotations

import threading
from pathlib import Path

from core.stores.eventlog import (
    EventLog,
    compact,
    iter_log,
    pending_erasures,
    request_erasure,
    user_digest,
)


def _rec(i: int, user: str, t: float) -> dict[str, object]:
    return {"id": f"{i}-0", "type": "interaction.logged", "data": {"user_id": user}, "t": t}


def test_erasure_list_hides_then_compaction_removes(tmp_path: Path) -> None:
    log = EventLog(tmp_path, "w")
    log.append([_rec(1, "gone", 10.0), _rec(2, "stay", 11.0), _rec(3, "gone", 12.0)])
    request_erasure(tmp_path, "gone", before=12.5)
    log.append([_rec(4, "gone", 20.0)])  # the user came back after the erasure: kept
    assert [r["id"] for r in iter_log(tmp_path)] == ["2-0", "4-0"]
    assert list(pending_erasures(tmp_path)) == [user_digest("gone")]
    # The list names a digest, never the id.
    assert b"gone" not in (tmp_path / "_erasures" / f"{user_digest('gone')}.json").read_bytes()

    done = compact(tmp_path)
    assert done.lines_removed == 2 and done.files_rewritten == 1
    assert done.users == {user_digest("gone"): 2}
    assert pending_erasures(tmp_path) == {}
    assert [r["id"] for r in iter_log(tmp_path)] == ["2-0", "4-0"]
    assert compact(tmp_path).lines_removed == 0  # nothing pending: nothing rewritten


def test_compaction_loses_no_line_appended_meanwhile(tmp_path: Path) -> None:
    writers = [EventLog(tmp_path, f"w{n}") for n in range(3)]
    stop = threading.Event()
    counts = [0, 0, 0]

    def write(n: int) -> None:
        while not stop.is_set():
            i = counts[n]
            writers[n].append([_rec(i * 10 + n, f"u{i % 5}", float(i))], now=0.0)
            counts[n] += 1

    threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    removed = 0
    for _ in range(20):
        request_erasure(tmp_path, "u0", before=1e12)
        removed += compact(tmp_path).lines_removed
    stop.set()
    for t in threads:
        t.join()
    ids = [r["id"] for r in iter_log(tmp_path)]
    # Every line not of the erased user is there, once (u0 lines written after the last
    # compaction stay: its erasure list entry was done with).
    expected = {f"{i * 10 + n}-0" for n in range(3) for i in range(counts[n]) if i % 5 != 0}
    assert len(ids) == len(set(ids))
    assert expected <= set(ids), len(expected - set(ids))
    assert sum(counts) > 100 and removed > 0
