"""The chart's HorizontalPodAutoscaler on a real node: MyPage from 2 to 4 Ready pods under load, and back.

`tests/autoscaling/test_hpa_loop.py` runs the loop without a kubelet, so only the replica count is
checked there; here the pods the HPA asks for start, pass the chart's probes, join MyPage's Service and
answer. The chart is installed on this module's own node with MyPage scaled on its request rate alone
(min 2, max 4, TARGET_PER_POD requests/s per pod, both stabilization windows 0) and the
prometheus-adapter rules rendered (`rateWindow: 15s`). On the host, bound to 127.0.0.1:

- Debian's Prometheus scrapes what the chart's ServiceMonitor selects, as the Prometheus Operator would
  (the ServiceMonitor rendered by `helm template` with the same values, its scrape interval 1 s,
  translated by `prometheus.service_monitor_scrape_configs`); Debian's build has no Kubernetes
  discovery, so `prometheus.KubernetesDiscovery` lists the Endpoints for file-based discovery with the
  meta labels that discovery gives, and the operator's relabelings make `namespace`, `service`, `pod`;
- prometheus-adapter reads the installed ConfigMap's `config.yaml` and serves it behind the
  APIServices (`autoscaling.metrics_apis`, removed before the adapter stops);
- the load: GETs of `/healthz` through MyPage's Service ClusterIP (kube-proxy's rules), bounded in
  count and time, at several times what the pods are meant to take.

Marked `node`.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import yaml

from rental_devenv import autoscaling, helm, prometheus, testkit
from rental_gateway import testing
from tests.autoscaling import test_hpa_loop
from tests.node import test_chart_on_node
from tests.node.conftest import NodeCluster

pytestmark = pytest.mark.node

NAMESPACE = test_chart_on_node.NAMESPACE
ADAPTER_NAMESPACE = "monitoring"
# The loop test's values (request rate alone, TARGET_PER_POD requests/s per pod, max 4, both
# stabilization windows 0, `rateWindow: 15s`), with the chart's default minimum of 2 pods.
TARGET_PER_POD, MAX_REPLICAS = test_hpa_loop.TARGET_PER_POD, test_hpa_loop.MAX_REPLICAS
MIN_REPLICAS = 2
VALUES = copy.deepcopy(test_hpa_loop.VALUES)
VALUES["mypage"]["autoscaling"]["minReplicas"] = MIN_REPLICAS
# Ten times the target of one pod: the rate asks for more than MAX_REPLICAS (the kubelet's probes add
# about 0.6 requests/s per pod to the metric, far below this).
LOAD_PER_SECOND = 10 * TARGET_PER_POD
LOAD_LIMIT, LOAD_SECONDS = 3000, 180
# Requests sent once the four pods are Ready, to see each take its share through the Service.
BURST = 200
# Rendered only: no Prometheus Operator (nor its CRD) runs here; its scrape is mirrored on the host.
SERVICE_MONITOR = (
    "metrics.serviceMonitor.enabled=true",
    "metrics.serviceMonitor.interval=1s",
    "metrics.serviceMonitor.scrapeTimeout=1s",
)

gateway = test_chart_on_node.gateway

T = TypeVar("T")


@dataclass
class Autoscaled:
    """The release with MyPage autoscaled, and Prometheus and the adapter serving its metric."""

    cluster: NodeCluster
    scraper: prometheus.PrometheusProcess
    adapter: autoscaling.AdapterProcess
    discovery: prometheus.KubernetesDiscovery
    hpa: str
    deployment: str
    service: str  # the Service customers reach (http)
    metrics_service: str  # the Service the HPA's metric describes and Prometheus scrapes through

    def read(self, *args: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.cluster.kubectl(*args, "-n", NAMESPACE, "-o", "json").stdout)
        return result


def _mypage(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [
        o
        for o in helm.select(objects, kind)
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "mypage"
    ]


@pytest.fixture(scope="module")
def autoscaled(
    node_cluster: NodeCluster, gateway: testing.GatewayProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Autoscaled]:
    directory = tmp_path_factory.mktemp("node-hpa")
    values = directory / "autoscaling-values.yaml"
    values.write_text(yaml.safe_dump(VALUES))
    test_chart_on_node.install(node_cluster, gateway, values)
    objects = helm.template(
        node_cluster.helm_binary,
        helm.CHART / "ci" / "default-values.yaml",
        values,
        set_values=SERVICE_MONITOR,
        namespace=NAMESPACE,
    )
    (monitor,) = helm.select(objects, "ServiceMonitor")
    (hpa,) = helm.select(objects, "HorizontalPodAutoscaler")
    (deployment,) = _mypage(objects, "Deployment")
    metrics_service = hpa["spec"]["metrics"][0]["object"]["describedObject"]["name"]
    (service,) = [s for s in _mypage(objects, "Service") if s["metadata"]["name"] != metrics_service]
    # The adapter reads the rules the release installed, as the ConfigMap mounted in its pod would.
    (config_map,) = helm.select(objects, "ConfigMap")
    listed = node_cluster.kubectl(
        "get", "configmap", "-n", NAMESPACE, config_map["metadata"]["name"], "-o", "json"
    )
    rules = directory / "adapter-config.yaml"
    rules.write_text(json.loads(listed.stdout)["data"]["config.yaml"])
    node_cluster.kubectl("create", "namespace", ADAPTER_NAMESPACE)

    targets = directory / "prometheus" / "targets" / "kubernetes.json"
    discovery = prometheus.KubernetesDiscovery(
        node_cluster.kubeconfig, monitor["spec"]["namespaceSelector"]["matchNames"], targets
    )
    prom = prometheus.PrometheusProcess(
        {},
        directory=directory / "prometheus",
        scrape_configs=prometheus.service_monitor_scrape_configs(monitor, targets_file=targets),
    )
    discovery.start()
    try:
        prom.start()
        with autoscaling.metrics_apis(
            node_cluster.kubeconfig,
            prometheus_url=prom.url,
            rules=rules,
            namespace=ADAPTER_NAMESPACE,
            directory=directory / "adapter",
        ) as adapter:
            yield Autoscaled(
                cluster=node_cluster,
                scraper=prom,
                adapter=adapter,
                discovery=discovery,
                hpa=hpa["metadata"]["name"],
                deployment=deployment["metadata"]["name"],
                service=service["metadata"]["name"],
                metrics_service=metrics_service,
            )
    finally:
        prom.stop()
        discovery.stop()


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod["status"].get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@dataclass
class _State:
    """MyPage as the Deployment, the kubelet and the Service's EndpointSlices each see it."""

    replicas: int  # the Deployment's .spec.replicas: what the HPA set
    pods: dict[str, dict[str, Any]]  # every MyPage pod, terminating ones included
    endpoints: list[dict[str, Any]]  # those of the http Service's EndpointSlices

    def settled(self, count: int) -> bool:
        """`count` replicas, exactly `count` pods, all Ready, and `count` endpoints, all ready."""
        return (
            self.replicas == count
            and len(self.pods) == count
            and all(_ready(p) and not p["metadata"].get("deletionTimestamp") for p in self.pods.values())
            and len(self.endpoints) == count
            and all(e["conditions"].get("ready") for e in self.endpoints)
        )

    def __repr__(self) -> str:
        pods = {n: "Ready" if _ready(p) else p["status"].get("phase") for n, p in self.pods.items()}
        ready = sum(1 for e in self.endpoints if e["conditions"].get("ready"))
        return f"replicas {self.replicas}, pods {pods}, {ready} of {len(self.endpoints)} endpoints ready"


def _state(autoscaled: Autoscaled) -> _State:
    deployment = autoscaled.read("get", "deployment", autoscaled.deployment)
    pods = autoscaled.read("get", "pods", "-l", "app.kubernetes.io/component=mypage")["items"]
    slices = autoscaled.read(
        "get", "endpointslices", "-l", f"kubernetes.io/service-name={autoscaled.service}"
    )["items"]
    return _State(
        replicas=int(deployment["spec"].get("replicas", 1)),
        pods={p["metadata"]["name"]: p for p in pods},
        endpoints=[e for s in slices for e in s.get("endpoints") or []],
    )


def _settled(autoscaled: Autoscaled, count: int) -> _State | None:
    state = _state(autoscaled)
    return state if state.settled(count) else None


class _Load:
    """GETs of `url` at `per_second` in a thread, bounded in count and time, counting failures."""

    def __init__(self, url: str, *, per_second: float, limit: int, seconds: float) -> None:
        self.url, self.interval, self.limit, self.seconds = url, 1 / per_second, limit, seconds
        self.sent = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="load")

    def _run(self) -> None:
        started = time.monotonic()
        while self.sent < self.limit and time.monotonic() - started < self.seconds:
            self.sent += 1
            try:
                with urllib.request.urlopen(self.url, timeout=5) as answer:
                    answer.read()
            except (OSError, urllib.error.URLError) as error:
                self.failures.append(f"{time.strftime('%H:%M:%S')} {error}")
            # Paced from the start, so slow answers do not lower the rate.
            if self._stop.wait(max(0.0, started + self.sent * self.interval - time.monotonic())):
                return

    def __enter__(self) -> _Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _explain(autoscaled: Autoscaled) -> str:
    described = autoscaled.cluster.kubectl("describe", "hpa", "-n", NAMESPACE, check=False).stdout
    targets = autoscaled.scraper.query("up")
    up = {t["metric"].get("pod", t["metric"].get("instance")): t["value"][1] for t in targets}
    return (
        f"{_state(autoscaled)!r}\n--- hpa ---\n{described[-3000:]}\n--- prometheus up ---\n{up}\n"
        f"--- discovery failures ---\n{autoscaled.discovery.failures[-5:]}\n"
        f"--- adapter ---\n{autoscaled.adapter.log_tail(20)}\n"
        f"{test_chart_on_node._diagnostics(autoscaled.cluster)}"
    )


def _until(autoscaled: Autoscaled, predicate: Callable[[], T], what: str, *, timeout: float) -> T:
    """`testkit.wait_for`, failing with what the HPA, the pods, Prometheus and the adapter saw."""
    try:
        return testkit.wait_for(predicate, timeout=timeout, what=what, interval=0.5)
    except TimeoutError as error:
        raise AssertionError(f"{error}\n{_explain(autoscaled)}") from None


def _wait(autoscaled: Autoscaled, count: int, what: str, *, timeout: float) -> _State:
    state = _until(autoscaled, lambda: _settled(autoscaled, count), what, timeout=timeout)
    assert state is not None
    return state


def _scaling_active(autoscaled: Autoscaled) -> bool:
    status = autoscaled.read("get", "hpa", autoscaled.hpa).get("status", {})
    return any(c["type"] == "ScalingActive" and c["status"] == "True" for c in status.get("conditions", []))


def _requests_by_pod(autoscaled: Autoscaled) -> dict[str, float]:
    """Each MyPage pod's `rental_mypage_requests_total` (all codes) as Prometheus last scraped it."""
    query = f'sum by (pod) (rental_mypage_requests_total{{service="{autoscaled.metrics_service}"}})'
    return {r["metric"]["pod"]: float(r["value"][1]) for r in autoscaled.scraper.query(query)}


def _scraped(
    autoscaled: Autoscaled, pods: set[str], *, since: dict[str, float] | None = None, at_least: float = 0
) -> dict[str, float] | None:
    """The counts of `_requests_by_pod` once Prometheus has every one of `pods`, and, `since` earlier
    counts, once they have risen by `at_least` in all."""
    counts = _requests_by_pod(autoscaled)
    if not counts.keys() >= pods:
        return None
    if since is not None and sum(counts[name] - since[name] for name in pods) < at_least:
        return None
    return counts


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as answer:
        answer.read()
        status: int = answer.status
        return status


def test_under_load_the_hpa_scales_mypage_to_four_ready_pods_that_serve_then_back_to_two(
    autoscaled: Autoscaled,
) -> None:
    # At rest: the HPA reads its metric (through the adapter, from Prometheus) and keeps two pods.
    _until(autoscaled, lambda: _scaling_active(autoscaled), "the HPA reading its metric", timeout=90)
    before = _wait(autoscaled, MIN_REPLICAS, f"{MIN_REPLICAS} MyPage pods Ready at rest", timeout=120)
    http = autoscaled.read("get", "service", autoscaled.service)["spec"]
    port = next(p["port"] for p in http["ports"] if p["name"] == "http")
    pod_port = next(
        p["containerPort"]
        for p in next(iter(before.pods.values()))["spec"]["containers"][0]["ports"]
        if p["name"] == "http"
    )

    with _Load(
        f"http://{http['clusterIP']}:{port}/healthz",
        per_second=LOAD_PER_SECOND,
        limit=LOAD_LIMIT,
        seconds=LOAD_SECONDS,
    ) as load:
        started = time.monotonic()
        up = _wait(autoscaled, MAX_REPLICAS, f"{MAX_REPLICAS} MyPage pods Ready in the Service", timeout=150)
        to_four = time.monotonic() - started
        new = sorted(set(up.pods) - set(before.pods))
        assert len(new) == MAX_REPLICAS - MIN_REPLICAS, (new, up)
        # Each new pod answers on its own address...
        direct = {name: _get(f"http://{up.pods[name]['status']['podIP']}:{pod_port}/healthz") for name in new}
        # ...and takes its share of the Service's traffic: BURST more requests of the load, counted by
        # each pod and scraped by Prometheus (found through the discovery and the ServiceMonitor's
        # relabelings). The kubelet's probes alone give a pod about 0.6 requests/s, a tenth of the
        # even share at this rate; kube-proxy picks a backend at random for each connection.
        pods = set(up.pods)
        first = _until(
            autoscaled,
            lambda: _scraped(autoscaled, pods),
            f"every pod's requests in Prometheus: {sorted(pods)}",
            timeout=30,
        )
        sent = load.sent
        _until(autoscaled, lambda: load.sent >= sent + BURST, f"{BURST} more requests sent", timeout=60)
        last = _until(
            autoscaled,
            lambda: _scraped(autoscaled, pods, since=first, at_least=BURST),
            f"{BURST} more requests scraped",
            timeout=30,
        )
    stopped = time.monotonic()
    assert first is not None and last is not None
    shares = {name: round(last[name] - first[name]) for name in sorted(pods)}

    # Traffic stops: within the rate window the metric falls, and the Deployment goes back to two pods.
    _until(
        autoscaled,
        lambda: _state(autoscaled).replicas == MIN_REPLICAS,
        f"the Deployment back to {MIN_REPLICAS} replicas",
        timeout=120,
    )
    decided = time.monotonic() - stopped
    down = _wait(autoscaled, MIN_REPLICAS, f"{MIN_REPLICAS} MyPage pods left", timeout=120)
    gone = time.monotonic() - stopped
    events = autoscaled.cluster.kubectl(
        "get", "events", "-n", NAMESPACE, "--field-selector", "reason=SuccessfulRescale"
    ).stdout
    print(
        f"\n[node] HPA on the node: load {LOAD_PER_SECOND}/s through the Service; {MAX_REPLICAS} pods "
        f"Ready and in its EndpointSlices {to_four:.1f}s after it began; the new pods answered "
        f"{sorted(direct.values())} on their own addresses; requests by pod in the next {BURST} (new: "
        f"{new}): {shares}; load stopped: Deployment at {MIN_REPLICAS} after {decided:.1f}s, "
        f"{MIN_REPLICAS} pods left after {gone:.1f}s; {len(load.failures)} failed of {load.sent} requests"
    )
    assert set(direct.values()) == {200}
    assert all(share >= BURST / MAX_REPLICAS / 3 for share in shares.values()), shares
    assert set(down.pods) <= set(up.pods)
    # kube-controller-manager 1.37 words an Object metric's reason as "external metric <name>(nil)".
    assert re.search(
        rf"New size: {MAX_REPLICAS}; reason: .*rental_mypage_requests_per_second.* above target", events
    ), events
    assert re.search(rf"New size: {MIN_REPLICAS}; reason: All metrics below target", events), events
    assert load.failures == [], load.failures[:10]
