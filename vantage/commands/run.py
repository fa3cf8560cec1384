"""`vantage run`: the embedded stack, the demo data set, one worker and the API, until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import socket
import subprocess
import sys
from typing import Any

from core.settings import Settings
from vantage.commands import Subparsers
from vantage.commands.connect import child_env, resolved
from vantage.supervise import Child, Supervisor, die_with_parent

log = logging.getLogger("vantage")


def add_run(sub: Subparsers, settings: Settings) -> None:
    """`vantage run`."""
    s = settings.serving
    run = sub.add_parser("run", help="embedded stack + demo data + worker + API (development)")
    run.add_argument("--host", default=s.host)
    run.add_argument("--port", type=int, default=s.port)
    run.add_argument("--no-demo", action="store_true", help="do not seed the demo data set")
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Embedded stack + demo data (if empty) + one worker + the API, until Ctrl-C."""
    # The port first: a clash is reported in a second, not after the demo import.
    try:
        sock = bind_api_socket(args.host, args.port)
    except OSError as e:
        print(port_error(args.host, args.port, e), file=sys.stderr)
        return 1
    import uvicorn

    from app.main import create_app
    from indexing.connect import build_stores

    with sock, resolved(settings, supervise=True) as s:
        if not args.no_demo:
            stores = build_stores(s, log_writer="import")
            seed_demo(stores, s)
            del stores

        def start_worker() -> subprocess.Popen[bytes]:
            cmd = [
                sys.executable,
                "-m",
                "indexing",
                "--consumer",
                "run-worker",
                "--stop-with-parent",
            ]
            return subprocess.Popen(cmd, env=child_env(s), preexec_fn=die_with_parent)

        worker = Child("indexing worker", start_worker, start_worker())
        try:
            _wait_for_consumer(s, "run-worker", worker.proc)
            key = demo_key(s) if s.auth.enabled else ""
            port = int(sock.getsockname()[1])  # the real one, also when --port 0
            config = uvicorn.Config(
                create_app(s), host=args.host, port=port, log_level=s.log_level.lower()
            )
            server = announcing_server(config, banner(s, args.host, port, key))
            with contextlib.suppress(KeyboardInterrupt), Supervisor([worker]):
                server.run(sockets=[sock])  # Ctrl-C is how it stops
        finally:
            worker.proc.terminate()
            worker.proc.wait(15)
    return 0


def seed_demo(stores: Any, s: Settings) -> bool:
    """On an empty catalogue: import the demo data set and train the interaction model.

    `stores` must log to `s.event_log_dir` (the model is trained on the durable log). What
    `vantage run` serves, and what the README's worked example is checked against."""
    from indexing.demo import write_demo
    from indexing.importer import import_dataset
    from training.interaction import logged_interactions, train_cf

    if stores.items.count() > 0:
        return False
    demo_dir = write_demo(s.data_dir / "demo")
    log.info("empty catalogue: seeding the demo data set from %s", demo_dir)
    report = import_dataset(stores, demo_dir)
    log.info("demo data imported: %s", report.as_dict())
    # One INFO line from train_cf sums the run up ("cf model ... published").
    train_cf(
        stores,
        logged_interactions(s.event_log_dir),
        tune_split=s.models.tune_split,
        progress=False,
    )
    return True


def bind_api_socket(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound now (uvicorn listens on it once the app is up)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def port_error(host: str, port: int, exc: OSError) -> str:
    """One line telling the user what went wrong and how to pick another port."""
    other = 8100 if port != 8100 else 8200
    how = (
        f"pick another port: make run PORT={other} (or vantage run --port {other}, "
        f"or VANTAGE_SERVING__PORT={other})"
    )
    if exc.errno == errno.EADDRINUSE:
        return f"error: port {port} on {host} is already in use; {how}"
    return f"error: cannot listen on {host}:{port} ({exc.strerror or exc}); {how}"


def banner(s: Settings, host: str, port: int, key: str) -> str:
    """What `vantage run` prints once the API answers: where, the demo key, a first request."""
    # Listening on every interface: the URL to paste is still the local one.
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    base = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
    auth = f" -H 'Authorization: Bearer {key}'" if key else ""
    lines = [
        "",
        f"Vantage is serving on {base}  (docs: {base}/docs; Ctrl-C stops it)",
    ]
    if key:
        lines.append(f"  API key (admin, also in {s.data_dir / 'demo-api-key'}): {key}")
    lines.append(
        f"  curl{auth} '{base}/v1/recommendations?user_id=u-0001&surface=homepage&limit=5'"
    )
    return "\n".join(lines) + "\n"


def announcing_server(config: Any, message: str) -> Any:
    """A uvicorn server that prints `message` once its socket accepts connections."""
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:  # listening: a request sent from now on is answered
                print(message, flush=True)

    return AnnouncingServer(config)


def _wait_for_consumer(s: Settings, name: str, proc: subprocess.Popen[bytes]) -> None:
    """Block until the worker has joined the live workers and taken its partitions (it loads
    the text model first), so writes accepted once the API answers are applied within a
    second."""
    import time

    from core.connect import connect_redis
    from core.keys import Keys
    from indexing.partitions import holders, live_workers

    r, keys = connect_redis(s), Keys.of(s.redis)
    deadline = time.monotonic() + 120
    # A heartbeat's score is its time + the lease TTL: one written by this process (not by an
    # earlier one under the same name) is past this.
    fresh_after = time.time() * 1000 + s.worker.claim_idle_ms
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the indexing worker exited with code {proc.returncode}")
            live = live_workers(r, keys)
            held = holders(r, keys).values()
            if live.get(name, 0) > fresh_after and all(h in live for h in held) and name in held:
                return
            time.sleep(0.2)
        raise TimeoutError("the indexing worker did not start within 120 s")
    finally:
        r.close()


def demo_key(s: Settings) -> str:
    """The embedded demo's admin key, created on first run and kept in the data dir."""
    from app.auth import KeyStore
    from core.connect import connect_redis
    from core.keys import Keys

    path = s.data_dir / "demo-api-key"
    store = KeyStore(connect_redis(s), Keys.of(s.redis))
    if path.is_file() and store.verify(path.read_text().strip()) is not None:
        return path.read_text().strip()
    token, _ = store.create(
        "demo", ["admin"], rate=s.auth.default_rate_per_s, burst=s.auth.default_burst
    )
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token
