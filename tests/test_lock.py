"""The checked-in lock: every dependency pinned, inside pyproject.toml's ranges, and used by
every install path (make, CI, the Docker image)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _lock() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", line)
        assert m, f"not an exact pin: {line!r}"
        pins[canonicalize_name(m.group(1))] = Version(m.group(2))
    return pins


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    pins = _lock()
    for spec in declared:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (spec, pins[name])


def test_torch_is_pinned_to_the_cpu_build_the_makefile_installs() -> None:
    assert _lock()[canonicalize_name("torch")] == Version("2.13.0")
    assert "TORCH_SPEC ?= torch==2.13.0" in (ROOT / "Makefile").read_text()


def test_installs_go_through_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -q -r $(LOCK)" in makefile
    assert "--no-deps" in makefile  # the project adds nothing unlocked
    assert "exec make test" in (ROOT / ".ci" / "run").read_text()
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"^COPY requirements\.lock\b", dockerfile, re.M)
    assert re.search(r"^RUN pip install .*-c requirements\.lock \.$", dockerfile, re.M)
