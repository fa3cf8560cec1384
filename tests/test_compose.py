"""Static checks of compose.yaml and docker/Dockerfile.

These run without a Docker engine: they parse the files and check the wiring
between services. Only ``test_docker_compose_config_is_valid`` needs Docker,
and it skips itself when no engine answers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "compose.yaml"
EXPECTED_SERVICES = {"etcd", "minio", "milvus", "redis", "api", "worker"}
APP_SERVICES = ("api", "worker")


@pytest.fixture(scope="module")
def compose() -> dict:
    assert COMPOSE_FILE.is_file(), f"missing {COMPOSE_FILE}"
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "compose.yaml must be a mapping"
    assert isinstance(data.get("services"), dict), "compose.yaml has no services mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def _environment(service: dict) -> dict[str, str]:
    """Compose allows environment as a mapping or a list of KEY=VALUE."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _depends_on(service: dict) -> dict[str, dict]:
    """Compose allows depends_on as a list of names or a mapping name -> options."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {} for name in deps}
    return {name: (opts or {}) for name, opts in deps.items()}


def _command_words(service: dict) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def _named_volume_sources(service: dict) -> list[str]:
    """Sources of the service's volume mounts that are named volumes (not bind mounts)."""
    names = []
    for mount in service.get("volumes") or []:
        if isinstance(mount, dict):
            if mount.get("type", "volume") != "volume" or not mount.get("source"):
                continue
            source = mount["source"]
        else:
            parts = str(mount).split(":")
            if len(parts) < 2:  # anonymous volume: just a container path
                continue
            source = parts[0]
        # Bind mounts start with a path; anything else names a volume.
        if not source.startswith((".", "/", "~", "$")):
            names.append(source)
    return names


def _dockerfile_path(service: dict) -> Path:
    build = service.get("build")
    assert build, "service has no build section"
    if isinstance(build, str):
        return (ROOT / build / "Dockerfile").resolve()
    context = ROOT / build.get("context", ".")
    return (context / build.get("dockerfile", "Dockerfile")).resolve()


def _dockerfile_instructions(path: Path) -> list[str]:
    """Logical instructions: comments dropped, backslash continuations joined."""
    instructions, current = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        instructions.append(current + line)
        current = ""
    if current:
        instructions.append(current)
    return instructions


def test_all_services_defined(services: dict) -> None:
    missing = EXPECTED_SERVICES - set(services)
    assert not missing, f"services missing from compose.yaml: {sorted(missing)}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_build_docker_dockerfile(services: dict, name: str) -> None:
    dockerfile = _dockerfile_path(services[name])
    assert dockerfile == (ROOT / "docker" / "Dockerfile").resolve(), dockerfile
    assert dockerfile.is_file(), f"{dockerfile} does not exist"


def test_api_and_worker_share_one_image(services: dict) -> None:
    assert services["api"].get("build") == services["worker"].get("build")
    assert services["api"].get("image") == services["worker"].get("image")


def test_dockerfile_installs_cpu_torch_before_project() -> None:
    instructions = _dockerfile_instructions(ROOT / "docker" / "Dockerfile")
    assert instructions[0].upper().startswith("FROM PYTHON:3.11-SLIM"), instructions[0]

    def index_of(pattern: str) -> int:
        for i, instruction in enumerate(instructions):
            if re.search(pattern, instruction):
                return i
        pytest.fail(f"no Dockerfile instruction matches {pattern!r}")

    torch_at = index_of(r"^RUN\b.*pip install.*\btorch==2\.13\.0\b")
    project_at = index_of(r"^RUN\b.*pip install\b.*\s\.(\s|$)")
    assert torch_at < project_at, "torch must be installed before the project"
    # The CPU-only index is what keeps CUDA wheels out of the image.
    assert "download.pytorch.org/whl/cpu" in instructions[torch_at]
    # The sources must be in the image before the project install runs.
    copy_at = index_of(r"^COPY\b.*pyproject\.toml")
    assert copy_at < project_at


def test_dockerfile_runs_as_non_root() -> None:
    instructions = _dockerfile_instructions(ROOT / "docker" / "Dockerfile")
    users = [i.split(None, 1)[1] for i in instructions if i.upper().startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), users


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_env_points_at_milvus_and_redis(services: dict, name: str) -> None:
    env = _environment(services[name])

    milvus = urlparse(env.get("VANTAGE_MILVUS__URI", ""))
    assert milvus.hostname == "milvus", env.get("VANTAGE_MILVUS__URI")
    assert milvus.port == 19530, env.get("VANTAGE_MILVUS__URI")

    redis = urlparse(env.get("VANTAGE_REDIS__URL", ""))
    assert redis.scheme == "redis", env.get("VANTAGE_REDIS__URL")
    assert redis.hostname == "redis", env.get("VANTAGE_REDIS__URL")
    assert (redis.port or 6379) == 6379, env.get("VANTAGE_REDIS__URL")

    assert env.get("VANTAGE_DATA_DIR") == "/data"
    assert env.get("HF_HUB_OFFLINE") == "1"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_waits_for_healthy_milvus_and_redis(services: dict, name: str) -> None:
    deps = _depends_on(services[name])
    for target in ("milvus", "redis"):
        assert target in deps, f"{name} does not depend on {target}"
        assert deps[target].get("condition") == "service_healthy", (name, target)
        assert "healthcheck" in services[target], f"{target} has no healthcheck to wait on"


def test_every_depends_on_target_is_defined(services: dict) -> None:
    for name, service in services.items():
        for target in _depends_on(service):
            assert target in services, f"{name} depends on undefined service {target!r}"


def test_milvus_depends_on_etcd_and_minio(services: dict) -> None:
    deps = _depends_on(services["milvus"])
    assert {"etcd", "minio"} <= set(deps), deps
    env = _environment(services["milvus"])
    assert env.get("ETCD_ENDPOINTS", "").split(":")[0] == "etcd", env
    assert env.get("MINIO_ADDRESS", "").split(":")[0] == "minio", env


def test_redis_enables_appendonly(services: dict) -> None:
    words = _command_words(services["redis"])
    assert "redis-server" in words, words
    flag = words.index("--appendonly") if "--appendonly" in words else -1
    assert flag >= 0 and words[flag + 1 : flag + 2] == ["yes"], words


def test_named_volumes_are_declared(compose: dict, services: dict) -> None:
    declared = set((compose.get("volumes") or {}).keys())
    for name, service in services.items():
        for volume in _named_volume_sources(service):
            assert volume in declared, f"{name} uses undeclared volume {volume!r}"


def test_api_and_worker_share_data_volume(services: dict) -> None:
    for name in APP_SERVICES:
        mounts = [str(m) for m in services[name].get("volumes") or []]
        assert "vantage-data:/data" in mounts, (name, mounts)


def test_worker_runs_indexing(services: dict) -> None:
    words = _command_words(services["worker"])
    assert "indexing" in words, words
    # A fixed container_name would make `--scale worker=N` fail.
    assert "container_name" not in services["worker"]


def _docker_engine_unavailable() -> str | None:
    """Why the compose CLI check cannot run here, or None if it can."""
    if shutil.which("docker") is None:
        return "docker CLI not installed"
    try:
        version = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if version.returncode != 0:
            return "`docker compose` plugin not available"
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
        if info.returncode != 0:
            return "no Docker engine answers `docker info`"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"docker not usable: {exc}"
    return None


def test_docker_compose_config_is_valid() -> None:
    reason = _docker_engine_unavailable()
    if reason:
        pytest.skip(f"{reason}; skipping `docker compose config -q`")
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_cluster_profile_runs_vantage_on_a_redis_cluster(services: dict) -> None:
    nodes = [n for n in services if n.startswith("redis-node-")]
    assert len(nodes) == 6
    for n in nodes:
        words = " ".join(_command_words(services[n]))
        assert "--cluster-enabled yes" in words and "--appendonly yes" in words
        assert services[n]["profiles"] == ["cluster"]
    init = services["redis-cluster-init"]
    assert set(_depends_on(init)) == set(nodes)
    assert "--cluster-replicas 1" in " ".join(_command_words(init))
    for name in ("api-cluster", "worker-cluster"):
        env = _environment(services[name])
        assert env["VANTAGE_REDIS__CLUSTER"] == "true"
        assert urlparse(env["VANTAGE_REDIS__URL"]).hostname in nodes
        assert int(env["VANTAGE_REDIS__WAIT_REPLICAS"]) >= 1
        assert _depends_on(services[name])["redis-cluster-init"] == {
            "condition": "service_completed_successfully"
        }
    worker = services["worker-cluster"]
    assert _command_words(worker)[:3] == ["python", "-m", "indexing"]
    partitions = int(_environment(worker)["VANTAGE_REDIS__PARTITIONS"])
    assert worker["deploy"]["replicas"] > 1 and partitions >= worker["deploy"]["replicas"]
