"""The chart's autoscaling and monitoring options as `helm template` renders them, without a cluster.

The HPA, the KEDA ScaledObject and the prometheus-adapter rules must agree on the metric's name, its
series and its window, and values that cannot work fail the render naming the value. The objects are
checked against the real API server in tests/autoscaling/, and the loop runs there end to end.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rental_devenv import helm

REQUIRED = ("partners.payment.url=https://pay.example", "partners.shipping.url=https://ship.example")
RATE = ("mypage.autoscaling.enabled=true", "mypage.autoscaling.targetRequestsPerSecond=5")


def render(binary: Path, *set_values: str) -> list[dict[str, Any]]:
    return helm.template(binary, set_values=(*REQUIRED, *set_values))


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [found] = helm.select(objects, kind)
    return found


def test_nothing_autoscales_by_default(helm_binary: Path) -> None:
    kinds = {o["kind"] for o in render(helm_binary)}
    assert not kinds & {"HorizontalPodAutoscaler", "ScaledObject", "ConfigMap"}


def test_hpa_and_adapter_rules_name_the_same_metric(helm_binary: Path) -> None:
    objects = render(
        helm_binary,
        *RATE,
        "metrics.prometheusAdapter.enabled=true",
        "metrics.prometheusAdapter.rateWindow=1m",
    )
    hpa = one(objects, "HorizontalPodAutoscaler")
    rate = next(m["object"] for m in hpa["spec"]["metrics"] if m["type"] == "Object")
    # The metric of the Service Prometheus scrapes MyPage through: its name is the series' `service`.
    assert rate["describedObject"]["kind"] == "Service"
    described = rate["describedObject"]["name"]
    assert described == "rental-purifier-rental-operator-mypage-metrics"
    [service] = [s for s in helm.select(objects, "Service") if s["metadata"]["name"] == described]
    assert service["metadata"]["labels"]["rental.purifier.io/metrics"] == "true"
    config = yaml.safe_load(one(objects, "ConfigMap")["data"]["config.yaml"])
    [rule] = config["rules"]
    assert rule["name"]["as"] == rate["metric"]["name"] == "rental_mypage_requests_per_second"
    assert rule["resources"]["overrides"]["service"] == {"resource": "service"}
    # Helm resolved the window; the adapter's own << >> templates are left for it.
    assert "[1m]" in rule["metricsQuery"] and "<<.Series>>" in rule["metricsQuery"]
    assert {r["name"]["matches"] for r in config["externalRules"]} == {
        "^rental_pending_work$",
        "^rental_payment_breaker_state$",
    }


def test_adapter_rules_can_live_in_the_adapters_namespace(helm_binary: Path) -> None:
    objects = render(
        helm_binary,
        "metrics.prometheusAdapter.enabled=true",
        "metrics.prometheusAdapter.namespace=monitoring",
    )
    assert one(objects, "ConfigMap")["metadata"]["namespace"] == "monitoring"


def test_keda_replaces_the_hpa_with_the_same_query_as_the_rule(helm_binary: Path) -> None:
    objects = render(helm_binary, *RATE, "mypage.autoscaling.keda.enabled=true")
    assert not helm.select(objects, "HorizontalPodAutoscaler")
    mypage = next(o for o in helm.select(objects, "Deployment") if o["metadata"]["name"].endswith("-mypage"))
    assert "replicas" not in mypage["spec"], "KEDA's HPA owns the replica count"
    triggers = {t["type"]: t for t in one(objects, "ScaledObject")["spec"]["triggers"]}
    query = triggers["prometheus"]["metadata"]["query"]
    assert query == (
        'sum(rate(rental_mypage_requests_total{namespace="rental-system",'
        'service="rental-purifier-rental-operator-mypage-metrics"}[2m]))'
    )
    assert triggers["prometheus"]["metadata"]["threshold"] == "5"
    assert triggers["cpu"]["metadata"]["value"] == "70"


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (
            ("mypage.autoscaling.enabled=true", "mypage.autoscaling.targetCPUUtilizationPercentage=null"),
            "mypage.autoscaling needs a metric",
        ),
        (
            (
                *RATE,
                "mypage.autoscaling.keda.enabled=true",
                "mypage.autoscaling.keda.prometheusServerAddress=",
            ),
            "mypage.autoscaling.keda.prometheusServerAddress",
        ),
        (("mypage.autoscaling.targetRequestsPerSecond=0",), "targetRequestsPerSecond"),
        (("mypage.autoscaling.targetRequestsPerSecond=fast",), "targetRequestsPerSecond"),
        (("metrics.prometheusAdapter.rateWindow=soon",), "rateWindow"),
        (
            (
                "mypage.autoscaling.enabled=true",
                "mypage.autoscaling.minReplicas=5",
                "mypage.autoscaling.maxReplicas=3",
            ),
            "minReplicas must not exceed maxReplicas",
        ),
    ],
)
def test_autoscaling_values_that_cannot_work_fail_the_render(
    helm_binary: Path, assignments: tuple[str, ...], message: str
) -> None:
    with pytest.raises(RuntimeError, match=re.escape(message)):
        render(helm_binary, *assignments)


def test_grafana_dashboard_ships_the_charts_file(helm_binary: Path) -> None:
    objects = render(
        helm_binary, "metrics.grafanaDashboard.enabled=true", "metrics.grafanaDashboard.labels.team=ops"
    )
    dashboard = one(objects, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["labels"]["team"] == "ops"
    shipped = (helm.CHART / "dashboards" / "purifier-rental-operator.json").read_text()
    assert json.loads(dashboard["data"]["purifier-rental-operator.json"]) == json.loads(shipped)
    # Every panel reads the Prometheus data source the user picks (its queries run in tests/e2e).
    panels = json.loads(shipped)["panels"]
    assert all(target["datasource"]["uid"] == "${datasource}" for p in panels for target in p["targets"])
