"""`vantage run` (what `make run` calls) as a newcomer sees it: the banner, then silence."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import REPO
from vantage.stack import free_port, port_open

BANNER = "Vantage is serving on"


def _vantage_run(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """`vantage run` on the embedded defaults, everything under `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VANTAGE_")}
    data = tmp_path / "data"
    env.update(
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(REPO),
        VANTAGE_DATA_DIR=str(data),
        VANTAGE_MILVUS__URI=str(data / "milvus.db"),
        # Not 6379: a developer's own `make run` may hold it (the stack would avoid it anyway).
        VANTAGE_REDIS__URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "vantage.cli", "run", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, so a failed test can end all of it
    )


def _stop(proc: subprocess.Popen[str]) -> int:
    """Ctrl-C, as a user stops it; the whole group is killed if that does not work."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait(30)


def test_banner_comes_last_and_only_once_the_api_accepts_connections(tmp_path: Path) -> None:
    port = free_port()
    proc = _vantage_run(tmp_path, "--no-demo", "--port", str(port))
    lines: list[str] = []
    accepting_at_banner: list[bool] = []
    banner_done = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(BANNER):
                # Checked the moment the banner shows up, before reading on.
                accepting_at_banner.append(port_open("127.0.0.1", port, timeout=2.0))
            lines.append(line.rstrip("\n"))
            if line.lstrip().startswith("curl"):
                banner_done.set()
        banner_done.set()  # the process ended: let the test fail with its output

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert banner_done.wait(600), "no banner within 10 minutes"
        output = "\n".join(lines)
        assert accepting_at_banner == [True], output
        # A quiet moment: nothing a newcomer has to scroll past follows the banner.
        time.sleep(3)
        before_stop = list(lines)
        start = next(i for i, line in enumerate(before_stop) if line.startswith(BANNER))
        tail = [line for line in before_stop[start:] if line.strip()]
        assert [line.split()[0] for line in tail] == ["Vantage", "API", "curl"], "\n".join(
            before_stop
        )
        key = (tmp_path / "data" / "demo-api-key").read_text().strip()
        assert key in tail[1] and key in tail[2]
        assert f"http://127.0.0.1:{port}/v1/recommendations?user_id=u-0001" in tail[2]
        # The banner's curl works as printed.
        res = httpx.get(
            tail[2].split("'")[-2], headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        assert res.status_code == 200, res.text
    finally:
        rc = _stop(proc)
        reader.join(10)
        assert proc.stdout is not None
        proc.stdout.close()
    assert rc == 0, "\n".join(lines)
    assert "Traceback" not in "\n".join(lines)


def test_port_in_use_is_one_clear_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _vantage_run(tmp_path, "--port", str(port))
        try:
            out, _ = proc.communicate(timeout=300)
        finally:
            _stop(proc)
            assert proc.stdout is not None
            proc.stdout.close()
    assert proc.returncode != 0, out
    assert "Traceback" not in out, out
    last = out.strip().splitlines()[-1]
    assert f"port {port}" in last and "already in use" in last, out
    assert "make run PORT=" in last and "--port" in last and "VANTAGE_SERVING__PORT" in last
    # It gave up before starting anything: no embedded stack, no demo import.
    assert not (tmp_path / "data").exists()


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def test_sigterm_stops_the_whole_stack(tmp_path: Path) -> None:
    """`kill` (docker stop, systemd) stops the worker, redis-server and Milvus Lite too:
    nothing started by `vantage run` is left running (it used to leave them orphaned)."""
    port = free_port()
    proc = _vantage_run(tmp_path, "--no-demo", "--port", str(port))
    try:
        deadline = time.monotonic() + 600
        while not port_open("127.0.0.1", port, timeout=1.0):
            assert proc.poll() is None and time.monotonic() < deadline, "API did not start"
            time.sleep(0.5)
        children = _children(proc.pid)
        assert len(children) >= 3, children  # redis-server, Milvus Lite, the worker
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) in (0, 130)
        deadline = time.monotonic() + 30
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [c for c in children if _alive(c)]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of its group
        proc.wait(30)
        assert proc.stdout is not None
        proc.stdout.close()
