"""The real autoscaling loop on the local control plane, with the chart's HPA and adapter rules.

MyPage runs as a process scraped by Debian's Prometheus; prometheus-adapter (built from its Go module)
serves the chart's rules through the custom metrics API behind an APIService; the HPA controller inside
kube-controller-manager reads `rental_mypage_requests_per_second` of MyPage's Service and changes the
Deployment's replicas. No kubelet runs, so the pods never start: the replica decision is what is tested.

Flow: requests to MyPage at several times the per-pod target raise the Deployment to maxReplicas; when
they stop, the rate falls to zero and (scale-down stabilization set to zero in the values) the
Deployment goes back to minReplicas.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from rental_devenv import autoscaling, mypage, prometheus, testkit

from .conftest import Render, adapter_rules, mypage_objects, one

pytestmark = pytest.mark.cluster

TARGET_PER_POD = 2  # requests per second per pod
MAX_REPLICAS = 4
VALUES: dict[str, Any] = {
    "mypage": {
        "autoscaling": {
            "enabled": True,
            "minReplicas": 1,
            "maxReplicas": MAX_REPLICAS,
            # No metrics-server here: a CPU metric that cannot be read would block every scale-down.
            "targetCPUUtilizationPercentage": None,
            "targetRequestsPerSecond": TARGET_PER_POD,
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0},
                "scaleDown": {"stabilizationWindowSeconds": 0},
            },
        }
    },
    "metrics": {"prometheusAdapter": {"enabled": True, "rateWindow": "15s"}},
}


class Load:
    """Requests to MyPage at a steady rate in a thread, bounded in count and time."""

    def __init__(
        self, target: mypage.MyPageProcess, *, per_second: float, limit: int, seconds: float
    ) -> None:
        self.target, self.interval, self.limit, self.seconds = target, 1 / per_second, limit, seconds
        self.sent = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        while self.sent < self.limit and time.monotonic() < deadline and not self._stop.is_set():
            if self.target.get("/healthz") != 200:
                self.failed += 1
            self.sent += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _json(kubectl: Any, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(kubectl(*args, "-o", "json").stdout)
    return result


def test_request_rate_scales_mypage_up_and_back_down(
    *,
    kubeconfig: Path,
    namespace: str,
    kubectl: Any,
    render: Render,
    mypage_process: mypage.MyPageProcess,
    tmp_path: Path,
) -> None:
    objects = render(VALUES)
    hpa = one(objects, "HorizontalPodAutoscaler")
    deployment = one(mypage_objects(objects), "Deployment")
    # The metrics Service (not the public one): the name Prometheus puts on the scraped series, and
    # the object the HPA's request-rate metric describes.
    service_name = hpa["spec"]["metrics"][0]["object"]["describedObject"]["name"]
    assert service_name in {o["metadata"]["name"] for o in mypage_objects(objects) if o["kind"] == "Service"}
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(mypage_objects(objects)))

    # Prometheus labels MyPage's series as a ServiceMonitor scrape of its Service would.
    prom = prometheus.PrometheusProcess(
        {"mypage": [f"127.0.0.1:{mypage_process.metrics_port}"]},
        directory=tmp_path,
        labels={"mypage": {"namespace": namespace, "service": service_name}},
    )
    prom.start()
    try:
        with autoscaling.metrics_apis(
            kubeconfig,
            prometheus_url=prom.url,
            rules=adapter_rules(objects, tmp_path),
            namespace=namespace,
            directory=tmp_path / "adapter",
        ):
            _scale_up_and_down(
                kubectl,
                namespace=namespace,
                hpa=hpa,
                deployment=deployment,
                service_name=service_name,
                target=mypage_process,
            )
    finally:
        prom.stop()


def _scale_up_and_down(
    kubectl: Any,
    *,
    namespace: str,
    hpa: dict[str, Any],
    deployment: dict[str, Any],
    service_name: str,
    target: mypage.MyPageProcess,
) -> None:
    metric = (
        f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{namespace}/services/{service_name}/"
        "rental_mypage_requests_per_second"
    )
    # The adapter serves the chart's rule for MyPage's Service (relisted from Prometheus every 5 s).
    testkit.wait_for(
        lambda: kubectl("get", "--raw", metric, check=False).returncode == 0,
        timeout=60,
        what="rental_mypage_requests_per_second in the custom metrics API",
    )
    kubectl("apply", "-f", "-", input=yaml.safe_dump(hpa))
    name = deployment["metadata"]["name"]

    def replicas() -> int:
        return int(_json(kubectl, "-n", namespace, "get", "deployment", name)["spec"].get("replicas", 1))

    def hpa_status() -> dict[str, Any]:
        status: dict[str, Any] = _json(kubectl, "-n", namespace, "get", "hpa", hpa["metadata"]["name"]).get(
            "status", {}
        )
        return status

    # At rest the HPA reads the metric and keeps minReplicas.
    testkit.wait_for(
        lambda: any(
            c["type"] == "ScalingActive" and c["status"] == "True" for c in hpa_status().get("conditions", [])
        ),
        timeout=90,
        what=f"the HPA reading its metric: {hpa_status()}",
    )
    assert replicas() == 1

    # Five times what maxReplicas pods are meant to take: the HPA goes to the maximum.
    with Load(target, per_second=5 * TARGET_PER_POD * MAX_REPLICAS / 2, limit=3000, seconds=180) as load:
        testkit.wait_for(
            lambda: replicas() == MAX_REPLICAS,
            timeout=150,
            what=f"MyPage scaled to {MAX_REPLICAS}: {hpa_status()}",
        )
        status = hpa_status()
        assert status["desiredReplicas"] == MAX_REPLICAS
        value = status["currentMetrics"][0]["object"]["current"]
        assert float(_quantity(value["value"] if "value" in value else value["averageValue"])) > 0
    assert load.failed == 0

    # Traffic stops: within the rate window the metric falls to zero and the HPA scales back down.
    testkit.wait_for(lambda: replicas() == 1, timeout=150, what=f"MyPage back to 1: {hpa_status()}")
    events = kubectl("-n", namespace, "get", "events", "--field-selector", "reason=SuccessfulRescale").stdout
    # kube-controller-manager 1.37 words an Object metric's reason as "external metric <name>(nil)".
    assert re.search(r"New size: 4; reason: .*rental_mypage_requests_per_second.* above target", events), (
        events
    )
    assert "All metrics below target" in events, events


def _quantity(text: str) -> float:
    """A Kubernetes quantity as the HPA status writes it ("12", "500m")."""
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
