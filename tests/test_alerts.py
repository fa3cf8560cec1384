"""The Prometheus rules in deploy/prometheus: valid, unit-tested by promtool, and about metrics
the API really exports (a renamed metric would otherwise leave an alert that never fires)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.promtools import base_name, declared, promtool

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "vantage-rules.yml"
RULE_TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.test.yml"))


def test_rules_are_valid() -> None:
    out = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_fires_and_stays_silent_in_promtool_unit_tests() -> None:
    assert RULE_TESTS
    out = subprocess.run(
        [promtool(), "test", "rules", *map(str, RULE_TESTS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    alerts = {r["alert"] for g in _groups() for r in g["rules"] if "alert" in r}
    tested: dict[str, list[bool]] = {}
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                tested.setdefault(check["alertname"], []).append(bool(check["exp_alerts"]))
    for alert in alerts:
        assert True in tested.get(alert, []), f"{alert}: no test shows it firing"
        assert False in tested.get(alert, []), f"{alert}: no test shows it silent"


def _groups() -> list[dict[str, object]]:
    return list(yaml.safe_load(RULES.read_text())["groups"])


def _rule_metrics() -> set[str]:
    exprs = " ".join(str(r["expr"]) for g in _groups() for r in g["rules"])  # type: ignore[attr-defined]
    return set(re.findall(r"\b(vantage_[a-z0-9_]+)", exprs))


@pytest.mark.integration
def test_rules_only_use_metrics_the_api_exports(client) -> None:  # type: ignore[no-untyped-def]
    client.get("/v1/recommendations", params={"user_id": "alerts-u"})
    text = client.get("/metrics").text
    names = declared(text)
    missing = sorted(m for m in _rule_metrics() if base_name(m) not in names)
    assert not missing, f"rules name metrics /metrics does not declare: {missing}"
