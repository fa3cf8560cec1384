"""`vantage run` with a Redis Cluster configured: it starts no redis-server of its own, and
the API and the worker it starts serve a whole flow through the cluster."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from core.settings import Settings
from tests.conftest import REPO, admin_token
from tests.integration.test_faults import _wait
from tests.integration.test_run import _children, _stop
from vantage.stack import free_port, port_open


def _cmdline(pid: int) -> str:
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def test_run_uses_the_cluster_and_serves_a_flow(tmp_path: Path, settings: Settings) -> None:
    port = free_port()
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VANTAGE_")}
    env.update(
        HF_HUB_OFFLINE="1",
        PYTHONPATH=str(REPO),
        VANTAGE_DATA_DIR=str(data),
        VANTAGE_MILVUS__URI=str(data / "milvus.db"),
        VANTAGE_REDIS__URL=settings.redis.url,
        VANTAGE_REDIS__CLUSTER="true",
        VANTAGE_REDIS__KEY_PREFIX=settings.redis.key_prefix,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "vantage.cli", "run", "--no-demo", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait(lambda: port_open("127.0.0.1", port, timeout=1.0), 600, "the API listening")
        commands = [_cmdline(c) for c in _children(proc.pid)]
        assert commands and not [c for c in commands if "redis-server" in c], commands
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {admin_token(settings)}"}
        with httpx.Client(base_url=base, headers=auth, timeout=30) as c:
            for i, title in enumerate(["Rockets to Mars", "Bread at home", "Stars at night"]):
                body = {"title": title, "categories": ["space" if i != 1 else "cooking"]}
                assert c.put(f"/v1/items/run-{i}", json=body).status_code == 202
            _wait(lambda: c.get("/v1/items/run-2").status_code == 200, 120, "items indexed")
            like = {"user_id": "runner", "item_id": "run-0", "type": "like"}
            assert c.post("/v1/interactions", json=like).status_code == 202
            _wait(lambda: c.get("/v1/users/runner").json().get("recent"), 120, "the like applied")
            res = c.get("/v1/recommendations", params={"user_id": "runner", "limit": 5})
            assert res.status_code == 200 and res.json()["items"], res.text
            assert "run-0" not in [i["item_id"] for i in res.json()["items"]]  # seen
    finally:
        rc = _stop(proc)
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.stdout.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert rc == 0, out
    assert "Traceback" not in out, out
