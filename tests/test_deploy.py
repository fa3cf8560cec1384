"""The Kubernetes manifests under deploy/kubernetes: valid for a named Kubernetes version
(kubernetes-validate, strict: unknown fields fail), and wired to what the code really has
(settings, surfaces file, probe routes, port, worker command, shared names)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
K8S_VERSION = "1.30.0"


def _docs() -> list[dict[str, Any]]:
    out = []
    for path in MANIFESTS:
        out += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return out


def _kind(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in _docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def _container(deployment: str) -> dict[str, Any]:
    return _kind("Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("doc", _docs(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_is_valid_for_the_named_kubernetes_version(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_broken_manifest_is_refused() -> None:
    bad = {**_kind("Service", "vantage-api"), "spec": {"ports": [{"port": "eighty"}]}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_every_setting_in_the_config_map_is_one_vantage_reads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {**_kind("ConfigMap", "vantage-env")["data"]}
    env.update(_kind("Secret", "vantage-secrets")["stringData"])
    surfaces = tmp_path / "surfaces.toml"
    surfaces.write_text(_kind("ConfigMap", "vantage-surfaces")["data"]["surfaces.toml"])
    env["VANTAGE_SURFACES_FILE"] = str(surfaces)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = Settings()
    assert s.redis.cluster and s.redis.partitions == int(env["VANTAGE_REDIS__PARTITIONS"])
    assert s.redis.wait_replicas == 1 and s.milvus.uri.startswith("http://milvus.")
    fields = {
        f"VANTAGE_{group.upper()}__{name.upper()}"
        for group, model in Settings.model_fields.items()
        if hasattr(model.annotation, "model_fields")
        for name in model.annotation.model_fields  # type: ignore[union-attr]
    } | {f"VANTAGE_{n.upper()}" for n in Settings.model_fields}
    unknown = [
        k for k in env if k.startswith("VANTAGE_") and k not in fields | {"VANTAGE_SURFACES_FILE"}
    ]
    assert not unknown, f"not settings: {unknown}"


def test_the_surfaces_config_map_is_the_shipped_file() -> None:
    shipped = tomllib.loads((ROOT / "core" / "surfaces.toml").read_text(encoding="utf-8"))
    mapped = tomllib.loads(_kind("ConfigMap", "vantage-surfaces")["data"]["surfaces.toml"])
    assert mapped == shipped


def test_probes_port_and_commands_match_the_app() -> None:
    from app.main import create_app

    paths = create_app(Settings()).openapi()["paths"]
    api = _container("vantage-api")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert "get" in paths[api[probe]["httpGet"]["path"]], probe
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert f"EXPOSE {api['ports'][0]['containerPort']}" in dockerfile
    worker = _container("vantage-worker")
    assert worker["command"][:3] == ["python", "-m", "indexing"]
    spec = _kind("Deployment", "vantage-worker")["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] >= 30  # a clean stop flushes and hands back


def test_names_referenced_exist() -> None:
    docs = _docs()
    have = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for deployment in ("vantage-api", "vantage-worker"):
        spec = _kind("Deployment", deployment)["spec"]["template"]["spec"]
        for src in spec["containers"][0]["envFrom"]:
            ref = src.get("configMapRef") or src.get("secretRef")
            kind = "ConfigMap" if "configMapRef" in src else "Secret"
            assert (kind, ref["name"]) in have
        for vol in spec["volumes"]:
            if "persistentVolumeClaim" in vol:
                assert ("PersistentVolumeClaim", vol["persistentVolumeClaim"]["claimName"]) in have
            if "configMap" in vol:
                assert ("ConfigMap", vol["configMap"]["name"]) in have
    hpa = _kind("HorizontalPodAutoscaler", "vantage-api")["spec"]["scaleTargetRef"]
    assert ("Deployment", hpa["name"]) in have
    labels = _kind("Deployment", "vantage-api")["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        sel = _kind(kind, "vantage-api")["spec"]["selector"]
        assert (sel.get("matchLabels") or sel).items() <= labels.items()


def test_helm_values_files_parse() -> None:
    for path in (ROOT / "deploy" / "helm-values").glob("*.yaml"):
        assert isinstance(yaml.safe_load(path.read_text(encoding="utf-8")), dict), path
