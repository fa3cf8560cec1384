"""Shared by the tests of the Prometheus rules and the Grafana dashboards: promtool, and the
metric names the API's /metrics declares."""

from __future__ import annotations

import os
import re
import shutil

import pytest

SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created", "_info")


def promtool() -> str:
    """promtool's path; a skip without it (a failure under CI, where `make tools` installs it)."""
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool not found: `make tools` installs Debian's prometheus package")
        pytest.skip("promtool not found (Debian package prometheus; `make tools`)")
    return found


def base_name(name: str) -> str:
    """A sample's metric family: `x_bucket`, `x_count`, `x_total`, ... -> `x`."""
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def declared(metrics_text: str) -> set[str]:
    """The metric families a /metrics body declares (its `# TYPE` lines), as base names."""
    return {base_name(m) for m in re.findall(r"^# TYPE (\S+) ", metrics_text, flags=re.M)}
