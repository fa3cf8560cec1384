"""Keep the children of `vantage run` alive: a child that dies is started again.

A restart waits 0.5 s after the first failure, doubling to at most 4 s for a child that keeps
dying (so a dead child is back within 5 s), and the wait resets once it has stayed up for a
minute. Each failure is one log line, never a traceback per request. Every child also dies
with its parent (`die_with_parent`): a `kill -9` of `vantage run` leaves no orphan holding
the ports and the data directory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("vantage")

FIRST_WAIT_S = 0.5
MAX_WAIT_S = 4.0
STABLE_S = 60.0

# Resolved in the parent: between fork and exec the child may only call what is loaded.
_PR_SET_PDEATHSIG = 1
_prctl: Any = None
if sys.platform.startswith("linux"):
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    _prctl = _libc.prctl


def die_with_parent() -> None:
    """`preexec_fn` of a child: SIGTERM it when the thread that started it exits (Linux)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One supervised process: `start` (re)starts it and returns the new process."""

    name: str
    start: Callable[[], subprocess.Popen[Any]]
    proc: subprocess.Popen[Any]
    on_restart: Callable[[subprocess.Popen[Any]], None] = lambda _: None
    restarts: int = 0
    _wait_s: float = FIRST_WAIT_S
    _up_since: float = field(default_factory=time.monotonic)


class Supervisor:
    """Watches children in a thread; `stop` ends the watch (the caller stops the children)."""

    def __init__(self, children: list[Child], *, poll_s: float = 0.2) -> None:
        self.children = children
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def __enter__(self) -> Supervisor:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            for child in self.children:
                if self._stop.is_set():
                    return
                self._check(child)

    def _check(self, child: Child) -> None:
        code = child.proc.poll()
        now = time.monotonic()
        if code is None:
            if now - child._up_since > STABLE_S:
                child._wait_s = FIRST_WAIT_S
            return
        log.warning(
            "%s exited with code %s; restarting it in %.1f s", child.name, code, child._wait_s
        )
        if self._stop.wait(child._wait_s):
            return
        child._wait_s = min(child._wait_s * 2, MAX_WAIT_S)
        try:
            child.proc = child.start()
        except Exception as e:  # the next round tries again, with a longer wait
            log.warning("%s did not start again: %s", child.name, str(e).splitlines()[0])
            return
        child.restarts += 1
        child._up_since = time.monotonic()
        child.on_restart(child.proc)
        log.warning("%s restarted (pid %d)", child.name, child.proc.pid)
