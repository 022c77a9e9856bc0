"""A real Prometheus (Debian's package) scraping our processes on loopback, for tests and benchmarks.

Checks of the metrics must go through what users run: Prometheus scraping `/metrics` over HTTP and
PromQL over the result, not a parse of the text format in the test. Started with a scrape interval
of one second and a throwaway TSDB; every query is an instant query against its HTTP API.

Processes on loopback are static targets. Pods on a development node (`tests/node/`) are scraped as the
Prometheus Operator scrapes them for the chart's ServiceMonitor: `service_monitor_scrape_configs` turns
the rendered ServiceMonitor into the scrape configs (relabelings included) the operator generates. The
operator's configs discover through Prometheus' Kubernetes discovery, which Debian's build leaves out
(its NEWS.Debian, 1.5.0: "Kubernetes support has been completely removed"); so `KubernetesDiscovery`
lists the Services, Endpoints and Pods with kubectl and writes, for file-based discovery, the targets
with the meta labels that discovery (role `endpoints`) would give them, and the operator's relabelings
do the rest inside Prometheus.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from rental_devenv import processes

__all__ = [
    "KubernetesDiscovery",
    "PrometheusProcess",
    "binary",
    "endpoints_targets",
    "service_monitor_scrape_configs",
]


def binary() -> str | None:
    return shutil.which("prometheus")


# The ServiceMonitor fields `service_monitor_scrape_configs` translates (those the chart renders): any
# other is refused rather than scraped differently from what the Prometheus Operator would do.
_MONITOR_SPEC = {"selector", "namespaceSelector", "endpoints"}
_MONITOR_ENDPOINT = {"port", "path", "interval", "scrapeTimeout"}


def _meta_name(key: str) -> str:
    """A Kubernetes label key as Prometheus' Kubernetes discovery spells it in a meta label name."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


def _named_by_target(kind: str, label: str) -> dict[str, Any]:
    """A relabeling: `label` is the name of the endpoint address's target, when it is a `kind`."""
    return {
        "source_labels": [
            "__meta_kubernetes_endpoint_address_target_kind",
            "__meta_kubernetes_endpoint_address_target_name",
        ],
        "regex": f"{kind};(.*)",
        "target_label": label,
    }


def _copied(meta: str, label: str) -> dict[str, Any]:
    """A relabeling: `label` takes the value of the meta label `__meta_kubernetes_<meta>`."""
    return {"source_labels": [f"__meta_kubernetes_{meta}"], "target_label": label}


def service_monitor_scrape_configs(monitor: dict[str, Any], *, targets_file: Path) -> list[dict[str, Any]]:
    """The Prometheus Operator's scrape configs for `monitor` (a ServiceMonitor), one per endpoint, with
    the targets of `targets_file` (written by `KubernetesDiscovery`) in place of Kubernetes discovery.

    The operator's relabelings for its `endpoints` role: keep the Services whose labels match the
    selector and the endpoint port of that name, label each series with `namespace`, `service`, `pod`,
    `container`, `job` (the Service's name) and `endpoint` (the port's name), drop finished pods.
    Translated: `selector.matchLabels`, `namespaceSelector.matchNames` (the namespaces to discover in,
    `KubernetesDiscovery`'s business) and an endpoint's `port` (by name), `path`, `interval` and
    `scrapeTimeout`; anything else raises ValueError.
    """
    metadata, spec = monitor["metadata"], monitor["spec"]
    if (
        set(spec) - _MONITOR_SPEC
        or set(spec["selector"]) - {"matchLabels"}
        or set(spec.get("namespaceSelector", {})) - {"matchNames"}
    ):
        raise ValueError(f"ServiceMonitor fields not translated: {spec}")
    selected = [
        {
            "action": "keep",
            "source_labels": [
                f"__meta_kubernetes_service_label_{_meta_name(key)}",
                f"__meta_kubernetes_service_labelpresent_{_meta_name(key)}",
            ],
            "regex": f"({re.escape(value)});true",
        }
        for key, value in sorted(spec["selector"]["matchLabels"].items())
    ]
    configs: list[dict[str, Any]] = []
    for index, endpoint in enumerate(spec["endpoints"]):
        if set(endpoint) - _MONITOR_ENDPOINT or "port" not in endpoint:
            raise ValueError(f"ServiceMonitor endpoint not translated: {endpoint}")
        config: dict[str, Any] = {
            "job_name": f"serviceMonitor/{metadata['namespace']}/{metadata['name']}/{index}",
            "metrics_path": endpoint.get("path", "/metrics"),
            "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "1s"}],
            "relabel_configs": [
                *selected,
                {
                    "action": "keep",
                    "source_labels": ["__meta_kubernetes_endpoint_port_name"],
                    "regex": re.escape(endpoint["port"]),
                },
                _named_by_target("Node", "node"),
                _named_by_target("Pod", "pod"),
                _copied("namespace", "namespace"),
                _copied("service_name", "service"),
                _copied("pod_name", "pod"),
                _copied("pod_container_name", "container"),
                {
                    "action": "drop",
                    "source_labels": ["__meta_kubernetes_pod_phase"],
                    "regex": "(Failed|Succeeded)",
                },
                _copied("service_name", "job"),
                {"target_label": "endpoint", "replacement": endpoint["port"]},
            ],
        }
        for key, name in (("interval", "scrape_interval"), ("scrapeTimeout", "scrape_timeout")):
            if key in endpoint:
                config[name] = endpoint[key]
        configs.append(config)
    return configs


def _ready(pod: dict[str, Any]) -> str:
    conditions = pod.get("status", {}).get("conditions") or []
    return "true" if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) else "false"


def endpoints_targets(objects: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Target groups (file-based discovery's format) with the meta labels Prometheus' Kubernetes
    discovery, role `endpoints`, gives: one target per address and port of every Endpoints object in
    `objects` (Services, Endpoints and Pods as `kubectl get -o json` lists them), not-ready addresses
    included, labelled with its Service's labels and, for a pod, the pod and the container with that
    port. The subset of labels the Prometheus Operator's relabelings read."""

    def key(kind: str) -> dict[tuple[str, str], dict[str, Any]]:
        return {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects if o["kind"] == kind}

    services, pods = key("Service"), key("Pod")
    groups: list[dict[str, Any]] = []
    for (namespace, name), endpoints in sorted(key("Endpoints").items()):
        common = {"__meta_kubernetes_namespace": namespace, "__meta_kubernetes_endpoints_name": name}
        service = services.get((namespace, name))
        if service is not None:
            common["__meta_kubernetes_service_name"] = name
            for label, value in (service["metadata"].get("labels") or {}).items():
                common[f"__meta_kubernetes_service_label_{_meta_name(label)}"] = value
                common[f"__meta_kubernetes_service_labelpresent_{_meta_name(label)}"] = "true"
        for subset in endpoints.get("subsets") or []:
            addresses = [(a, "true") for a in subset.get("addresses") or []]
            addresses += [(a, "false") for a in subset.get("notReadyAddresses") or []]
            for port in subset.get("ports") or []:
                protocol = port.get("protocol", "TCP")
                for address, ready in addresses:
                    labels = {
                        **common,
                        "__meta_kubernetes_endpoint_port_name": port.get("name", ""),
                        "__meta_kubernetes_endpoint_port_protocol": protocol,
                        "__meta_kubernetes_endpoint_ready": ready,
                    }
                    reference = address.get("targetRef") or {}
                    if reference:
                        labels["__meta_kubernetes_endpoint_address_target_kind"] = reference["kind"]
                        labels["__meta_kubernetes_endpoint_address_target_name"] = reference["name"]
                    pod = (
                        pods.get((namespace, reference.get("name", "")))
                        if reference.get("kind") == "Pod"
                        else None
                    )
                    if pod is not None:
                        labels["__meta_kubernetes_pod_name"] = pod["metadata"]["name"]
                        labels["__meta_kubernetes_pod_phase"] = pod.get("status", {}).get("phase", "")
                        labels["__meta_kubernetes_pod_ready"] = _ready(pod)
                        for container in pod["spec"]["containers"]:
                            if any(
                                p["containerPort"] == port["port"] and p.get("protocol", "TCP") == protocol
                                for p in container.get("ports") or []
                            ):
                                labels["__meta_kubernetes_pod_container_name"] = container["name"]
                    groups.append({"targets": [f"{address['ip']}:{port['port']}"], "labels": labels})
    return groups


class KubernetesDiscovery:
    """Keeps `path`, a file for Prometheus' file-based discovery, listing `endpoints_targets` of the
    `namespaces` through the API server `kubeconfig` names, polled every `interval` seconds in a thread:
    Prometheus' Kubernetes discovery, for a Prometheus built without it. The file is replaced whole
    (written aside, renamed), only when its content changes; a failed poll keeps the last one."""

    def __init__(
        self, kubeconfig: Path, namespaces: Sequence[str], path: Path, *, interval: float = 1.0
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespaces = list(namespaces)
        self.path = path
        self.interval = interval
        self.failures: list[str] = []
        self._written = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="kubernetes-discovery")

    def start(self) -> None:
        """The first listing is written before this returns (or raises)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write(self._list())
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _list(self) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = []
        for namespace in self.namespaces:
            listed = subprocess.run(
                [
                    str(Path(sys.executable).parent / "kubectl"),
                    f"--kubeconfig={self.kubeconfig}",
                    "get",
                    "services,endpoints,pods",
                    "--namespace",
                    namespace,
                    "--output",
                    "json",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            if listed.returncode != 0:
                raise RuntimeError(f"listing {namespace} failed: {listed.stderr.strip()}")
            objects += json.loads(listed.stdout)["items"]
        return endpoints_targets(objects)

    def _write(self, groups: list[dict[str, Any]]) -> None:
        text = json.dumps(groups, indent=1, sort_keys=True)
        if text != self._written:
            aside = self.path.with_name(self.path.name + ".new")
            aside.write_text(text)
            os.replace(aside, self.path)
            self._written = text

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._write(self._list())
            except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as error:
                self.failures.append(f"{time.strftime('%H:%M:%S')} {error}")


class PrometheusProcess:
    def __init__(
        self,
        targets: dict[str, list[str]],
        *,
        directory: Path | None = None,
        labels: dict[str, dict[str, str]] | None = None,
        scrape_configs: Sequence[dict[str, Any]] = (),
    ) -> None:
        """`targets`: job name -> list of `127.0.0.1:port` addresses to scrape.

        `labels`: job name -> target labels to attach to its series, standing in for what service
        discovery attaches in a cluster (a ServiceMonitor scrape adds `namespace`, `service`, `pod`),
        which prometheus-adapter's rules rely on to tie a series to a Kubernetes object.

        `scrape_configs`: more jobs as Prometheus' configuration spells them (those of
        `service_monitor_scrape_configs`), after the static ones.
        """
        self.targets = targets
        self.labels = labels or {}
        self.scrape_configs = list(scrape_configs)
        self.directory = directory or Path(tempfile.mkdtemp(prefix="prometheus-"))
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        executable = binary()
        if executable is None:
            raise RuntimeError("prometheus is not installed (scripts/setup installs Debian's package)")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": job,
                    "static_configs": [{"targets": addresses, "labels": self.labels.get(job, {})}],
                }
                for job, addresses in self.targets.items()
            ]
            + self.scrape_configs,
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = processes.free_port()
        with (self.directory / "prometheus.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    executable,
                    f"--config.file={self.directory / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited: {(self.directory / 'prometheus.log').read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("prometheus did not become ready")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query; the result vector (each with `metric` labels and `value`)."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.load(response)
        if answer.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: {answer}")
        return list(answer["data"]["result"])

    def scalar(self, promql: str) -> float | None:
        """The single value of a query (None when the vector is empty)."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None
