"""deploy/kubernetes: every manifest valid against the Kubernetes schemas (offline, the ones
kubernetes-validate ships), and the parts that must agree with each other and with the
server do: probes on real endpoints, the drain inside the grace period."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
import yaml

from presence.config import Settings
from tests.conftest import REPO

MANIFESTS = sorted((REPO / "deploy" / "kubernetes").glob("*.yaml"))
KUBERNETES_VERSION = "1.30.0"  # the oldest release still supported upstream when this was written


def documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in MANIFESTS:
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def deployment() -> dict[str, Any]:
    (found,) = [doc for doc in documents() if doc["kind"] == "Deployment"]
    return found


def test_the_manifests_exist() -> None:
    kinds = {doc["kind"] for doc in documents()}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler"} <= kinds


@pytest.mark.parametrize("doc", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_each_manifest_is_valid_for_kubernetes_strictly(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validation_rejects_a_misspelt_field() -> None:
    broken = copy.deepcopy(deployment())
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_probes_point_at_the_servers_health_and_readiness_endpoints() -> None:
    container = deployment()["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port_names = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert port_names[container["readinessProbe"]["httpGet"]["port"]] == Settings().port


def test_the_grace_period_covers_the_pre_stop_pause_and_the_drain() -> None:
    spec = deployment()["spec"]["template"]["spec"]
    container = spec["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    drain_s = float(env["PRESENCE_DRAIN_TIMEOUT_S"])
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    assert spec["terminationGracePeriodSeconds"] >= float(command[1]) + drain_s + 3, "time to close after the drain"


def test_the_autoscaler_reads_the_metric_the_server_exports() -> None:
    (hpa,) = [doc for doc in documents() if doc["kind"] == "HorizontalPodAutoscaler"]
    (metric,) = hpa["spec"]["metrics"]
    from presence.server.metrics import Metrics

    names = {family.name for family in Metrics().registry.collect()}
    assert metric["pods"]["metric"]["name"] in names
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment()["metadata"]["name"]
