"""The pure parts of `rental_devenv.prometheus` that scrape pods as a ServiceMonitor would: the
Prometheus Operator's scrape configs for the chart's ServiceMonitor, and the meta labels of Prometheus'
Kubernetes discovery (role `endpoints`). Prometheus itself runs them in `tests/node/test_hpa_on_node.py`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from rental_devenv import prometheus

MONITOR: dict[str, Any] = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "ServiceMonitor",
    "metadata": {"name": "rental-purifier-rental-operator", "namespace": "rental-system"},
    "spec": {
        "selector": {
            "matchLabels": {"app.kubernetes.io/instance": "rental", "rental.purifier.io/metrics": "true"}
        },
        "namespaceSelector": {"matchNames": ["rental-system"]},
        "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "1s", "scrapeTimeout": "1s"}],
    },
}


def _service(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"kind": "Service", "metadata": {"name": name, "namespace": "ns", "labels": labels}}


def _pod(name: str, phase: str = "Running", ready: str = "True") -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {
            "containers": [
                {"name": "sidecar", "ports": [{"containerPort": 8080, "protocol": "TCP"}]},
                {"name": "mypage", "ports": [{"containerPort": 9090, "protocol": "TCP"}]},
            ]
        },
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready}]},
    }


def _endpoints(name: str, ready: list[tuple[str, str]], not_ready: list[tuple[str, str]]) -> dict[str, Any]:
    def address(ip: str, pod: str) -> dict[str, Any]:
        return {"ip": ip, "targetRef": {"kind": "Pod", "name": pod, "namespace": "ns"}}

    return {
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": "ns"},
        "subsets": [
            {
                "addresses": [address(*a) for a in ready],
                "notReadyAddresses": [address(*a) for a in not_ready],
                "ports": [{"name": "metrics", "port": 9090, "protocol": "TCP"}],
            }
        ],
    }


def test_every_address_is_a_target_with_its_service_pod_and_container() -> None:
    objects = [
        _service(
            "mypage-metrics", {"app.kubernetes.io/instance": "rental", "rental.purifier.io/metrics": "true"}
        ),
        _pod("mypage-a"),
        _pod("mypage-b", phase="Pending", ready="False"),
        _endpoints(
            "mypage-metrics", ready=[("10.244.0.5", "mypage-a")], not_ready=[("10.244.0.6", "mypage-b")]
        ),
    ]
    groups = prometheus.endpoints_targets(objects)
    assert [g["targets"] for g in groups] == [["10.244.0.5:9090"], ["10.244.0.6:9090"]]
    first, second = (g["labels"] for g in groups)
    assert first == {
        "__meta_kubernetes_namespace": "ns",
        "__meta_kubernetes_endpoints_name": "mypage-metrics",
        "__meta_kubernetes_service_name": "mypage-metrics",
        "__meta_kubernetes_service_label_app_kubernetes_io_instance": "rental",
        "__meta_kubernetes_service_labelpresent_app_kubernetes_io_instance": "true",
        "__meta_kubernetes_service_label_rental_purifier_io_metrics": "true",
        "__meta_kubernetes_service_labelpresent_rental_purifier_io_metrics": "true",
        "__meta_kubernetes_endpoint_port_name": "metrics",
        "__meta_kubernetes_endpoint_port_protocol": "TCP",
        "__meta_kubernetes_endpoint_ready": "true",
        "__meta_kubernetes_endpoint_address_target_kind": "Pod",
        "__meta_kubernetes_endpoint_address_target_name": "mypage-a",
        "__meta_kubernetes_pod_name": "mypage-a",
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_ready": "true",
        "__meta_kubernetes_pod_container_name": "mypage",
    }
    # Not ready yet: still a target (the operator's relabelings keep it), marked as such.
    assert second["__meta_kubernetes_endpoint_ready"] == "false"
    assert second["__meta_kubernetes_pod_phase"] == "Pending"
    assert second["__meta_kubernetes_pod_ready"] == "false"


def test_endpoints_without_a_service_or_subsets_give_no_service_labels_or_no_targets() -> None:
    objects = [
        {"kind": "Endpoints", "metadata": {"name": "empty", "namespace": "ns"}},
        _endpoints("orphan", ready=[("10.244.0.7", "gone")], not_ready=[]),
    ]
    (group,) = prometheus.endpoints_targets(objects)
    assert "__meta_kubernetes_service_name" not in group["labels"]
    assert "__meta_kubernetes_pod_name" not in group["labels"]


def test_the_service_monitor_becomes_the_operators_relabelings(tmp_path: Path) -> None:
    targets = tmp_path / "targets.json"
    (config,) = prometheus.service_monitor_scrape_configs(MONITOR, targets_file=targets)
    assert config["job_name"] == "serviceMonitor/rental-system/rental-purifier-rental-operator/0"
    assert config["metrics_path"] == "/metrics"
    assert (config["scrape_interval"], config["scrape_timeout"]) == ("1s", "1s")
    assert config["file_sd_configs"] == [{"files": [str(targets)], "refresh_interval": "1s"}]
    keeps = [r for r in config["relabel_configs"] if r.get("action") == "keep"]
    assert keeps == [
        {
            "action": "keep",
            "source_labels": [
                "__meta_kubernetes_service_label_app_kubernetes_io_instance",
                "__meta_kubernetes_service_labelpresent_app_kubernetes_io_instance",
            ],
            "regex": "(rental);true",
        },
        {
            "action": "keep",
            "source_labels": [
                "__meta_kubernetes_service_label_rental_purifier_io_metrics",
                "__meta_kubernetes_service_labelpresent_rental_purifier_io_metrics",
            ],
            "regex": "(true);true",
        },
        {"action": "keep", "source_labels": ["__meta_kubernetes_endpoint_port_name"], "regex": "metrics"},
    ]
    labels = {r["target_label"] for r in config["relabel_configs"] if "target_label" in r}
    assert labels == {"namespace", "service", "pod", "container", "node", "job", "endpoint"}


@pytest.mark.parametrize(
    "change",
    [
        {"selector": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}},
        {"namespaceSelector": {"any": True}},
        {"endpoints": [{"port": "metrics", "relabelings": []}]},
        {"endpoints": [{"targetPort": 9090}]},
        {"podTargetLabels": ["app"]},
    ],
)
def test_a_field_not_translated_is_refused(change: dict[str, Any], tmp_path: Path) -> None:
    monitor = {**MONITOR, "spec": {**MONITOR["spec"], **change}}
    with pytest.raises(ValueError, match="not translated"):
        prometheus.service_monitor_scrape_configs(monitor, targets_file=tmp_path / "t.json")


@pytest.mark.skipif(shutil.which("promtool") is None, reason="Debian's prometheus package is not installed")
def test_debians_prometheus_accepts_the_configuration(tmp_path: Path) -> None:
    targets = tmp_path / "targets.json"
    targets.write_text("[]")
    configs = prometheus.service_monitor_scrape_configs(MONITOR, targets_file=targets)
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump({"scrape_configs": configs}))
    checked = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
