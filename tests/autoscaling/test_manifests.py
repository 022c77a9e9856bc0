"""The chart's autoscaling objects are accepted by the real API server, as rendered.

The CPU HorizontalPodAutoscaler of the defaults, one on CPU and request rate with a behavior, and the
KEDA ScaledObject (against KEDA's own CRD from the `github.com/kedacore/keda/v2` module, never written
by hand) are created for real in the test's namespace; the API server's validation is the judge.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rental_devenv import autoscaling

from .conftest import Render, one

pytestmark = pytest.mark.cluster

RATE_AND_CPU = {
    "enabled": True,
    "minReplicas": 2,
    "maxReplicas": 8,
    "targetCPUUtilizationPercentage": 60,
    "targetRequestsPerSecond": 0.5,
    "behavior": {
        "scaleDown": {
            "stabilizationWindowSeconds": 120,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
        }
    },
}


@pytest.fixture(scope="module")
def keda_crd(kubeconfig: Path) -> Path:
    return autoscaling.keda_crd()


def _create(kubectl: Any, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = json.loads(
        kubectl("create", "-f", "-", "-o", "json", input=yaml.safe_dump(body)).stdout
    )
    return created


def test_cpu_hpa_of_the_defaults_is_accepted(kubectl: Any, render: Render) -> None:
    hpa = one(render({"mypage": {"autoscaling": {"enabled": True}}}), "HorizontalPodAutoscaler")
    created = _create(kubectl, hpa)
    [metric] = created["spec"]["metrics"]
    assert metric["resource"] == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}


def test_rate_and_cpu_hpa_with_behavior_is_accepted(kubectl: Any, render: Render) -> None:
    hpa = one(render({"mypage": {"autoscaling": RATE_AND_CPU}}), "HorizontalPodAutoscaler")
    created = _create(kubectl, hpa)
    assert [m["type"] for m in created["spec"]["metrics"]] == ["Resource", "Object"]
    rate = created["spec"]["metrics"][1]["object"]
    assert rate["metric"]["name"] == "rental_mypage_requests_per_second"
    assert rate["target"] == {"type": "AverageValue", "averageValue": "500m"}
    assert created["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 120


def test_keda_scaledobject_is_accepted_by_kedas_crd(kubectl: Any, render: Render, keda_crd: Path) -> None:
    kubectl("apply", "--server-side", "-f", str(keda_crd))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(keda_crd))
    objects = render({"mypage": {"autoscaling": {**RATE_AND_CPU, "keda": {"enabled": True}}}})
    assert not [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"], "KEDA makes the HPA"
    scaled = _create(kubectl, one(objects, "ScaledObject"))
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (2, 8)
    cpu, rate = scaled["spec"]["triggers"]
    assert (cpu["type"], cpu["metadata"]["value"]) == ("cpu", "60")
    assert rate["type"] == "prometheus"
    assert rate["metadata"]["threshold"] == "0.5"
    assert "rental_mypage_requests_total" in rate["metadata"]["query"]
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 60}]
