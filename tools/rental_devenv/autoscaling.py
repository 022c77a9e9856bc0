"""The pieces of metric-driven autoscaling outside our chart: prometheus-adapter and KEDA's CRDs.

The chart's HorizontalPodAutoscaler reads MyPage's request rate through the custom metrics API, which
prometheus-adapter serves from Prometheus behind an APIService; the HPA controller inside
kube-controller-manager makes the decision. To test that loop for real, this module builds
prometheus-adapter from its Go module (`tools/prometheus-adapter`, its own pins: it cannot share the
control plane's k8s.io modules) into the cache outside the repository, runs it on 127.0.0.1, and writes
the objects that register it with the API server. KEDA's ScaledObject CRD comes from the
`github.com/kedacore/keda/v2` module's files, never written by hand.

How the API server reaches a server bound to loopback: an APIService names a Service, and with
aggregator routing off (the control plane's default) the aggregator dials the Service's address. For a
ClusterIP Service that is a virtual IP nobody routes here (no kube-proxy), and endpoint validation
refuses loopback addresses; a Service of type ExternalName `localhost` resolves to the adapter on
127.0.0.1, with the port taken from the APIService. The serving certificate carries
`<service>.<namespace>.svc`, the name the aggregator verifies against the APIService's caBundle.

Called by the autoscaling tests (`tests/autoscaling/`) and `scripts/setup` (`python -m
rental_devenv.autoscaling` builds the adapter if needed and prints its path).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from rental_devenv import build, certs, processes

__all__ = [
    "ADAPTER_MODULE",
    "KEDA_VERSION",
    "METRICS_APIS",
    "AdapterProcess",
    "adapter_version",
    "ensure_adapter",
    "keda_crd",
    "main",
    "metrics_apis",
]

ADAPTER_MODULE = "sigs.k8s.io/prometheus-adapter"
_ADAPTER_SOURCES = Path(__file__).resolve().parent.parent / "prometheus-adapter"
KEDA_VERSION = "v2.21.0"
_KEDA_MODULE = "github.com/kedacore/keda/v2"
# The API groups and versions prometheus-adapter serves (one APIService each).
METRICS_APIS = (
    ("custom.metrics.k8s.io", "v1beta1"),
    ("custom.metrics.k8s.io", "v1beta2"),
    ("external.metrics.k8s.io", "v1beta1"),
)


def adapter_version() -> str:
    return build.required_version(_ADAPTER_SOURCES / "go.mod", ADAPTER_MODULE)


# The Go helpers of `build` (progress output, lock, version pins) serve this build as they serve the
# control plane's.
def ensure_adapter() -> Path:
    """The prometheus-adapter binary, built from Go modules the first time (about two minutes cold)."""
    version = adapter_version()
    # Keyed by the pins too: a changed go.sum (a dependency bumped) is a different binary.
    digest = hashlib.sha256(b"".join((_ADAPTER_SOURCES / f).read_bytes() for f in ("go.mod", "go.sum")))
    target = build.cache_root() / "bin" / f"prometheus-adapter-{version}-{digest.hexdigest()[:10]}"
    binary = target / "adapter"
    if binary.exists():
        return binary
    build.require_go("build prometheus-adapter")
    with build.exclusive(build.cache_root() / "prometheus-adapter.lock"):
        if binary.exists():
            return binary  # another process built it while we waited for the lock
        started = time.monotonic()
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="building-adapter-", dir=target.parent))
        try:
            build.go_build(
                _ADAPTER_SOURCES,
                [f"{ADAPTER_MODULE}/cmd/adapter"],
                staging,
                "-s -w",
                f"prometheus-adapter {version}",
            )
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        print(
            f"[prometheus-adapter] built in {time.monotonic() - started:.0f}s: {binary}",
            file=sys.stderr,
            flush=True,
        )
    return binary


def keda_crd(name: str = "keda.sh_scaledobjects.yaml") -> Path:
    """A KEDA CRD file as the keda module ships it (`config/crd/bases/`, read-only in GOMODCACHE)."""
    return build.module_file(_KEDA_MODULE, KEDA_VERSION, f"config/crd/bases/{name}")


class AdapterProcess(processes.ChildProcess):
    """prometheus-adapter on 127.0.0.1, serving the metrics APIs from `prometheus_url` by `rules`."""

    def __init__(
        self,
        kubeconfig: Path,
        *,
        prometheus_url: str,
        rules: Path,
        namespace: str,
        directory: Path,
        service: str = "prometheus-adapter",
    ) -> None:
        super().__init__(directory / "prometheus-adapter.log")
        self.kubeconfig = kubeconfig
        self.prometheus_url = prometheus_url
        self.rules = rules
        self.namespace = namespace
        self.service = service
        self.directory = directory
        self.port = 0
        self.serving: certs.Serving | None = None

    def start(self, *, timeout: float = 60.0) -> None:
        binary = ensure_adapter()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.serving = certs.issue_serving(
            self.directory,
            name=self.service,
            dns_names=[f"{self.service}.{self.namespace}.svc", "localhost"],
        )
        self.port = processes.free_port()
        # The admin kubeconfig stands in for the RBAC a real install grants the adapter (delegated
        # authentication and authorization, listing the objects metrics are attached to).
        kubeconfig = str(self.kubeconfig)
        command = [
            str(binary),
            f"--secure-port={self.port}",
            "--bind-address=127.0.0.1",
            f"--tls-cert-file={self.serving.cert}",
            f"--tls-private-key-file={self.serving.key}",
            f"--lister-kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--prometheus-url={self.prometheus_url}",
            f"--config={self.rules}",
            # New series show up within seconds instead of the default ten minutes.
            "--metrics-relist-interval=5s",
            "--v=2",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        context = ssl.create_default_context(cafile=str(self.serving.ca_cert))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus-adapter exited:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{self.port}/readyz", context=context, timeout=2
                ) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"prometheus-adapter not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def registration(self) -> list[dict[str, Any]]:
        """The Service and APIServices that put the adapter behind the API server's aggregator."""
        if self.serving is None:
            raise RuntimeError("start the adapter first: its CA goes into the APIServices")
        ca_bundle = base64.b64encode(self.serving.ca_cert.read_bytes()).decode()
        service: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": self.service, "namespace": self.namespace},
            "spec": {"type": "ExternalName", "externalName": "localhost"},
        }
        apiservices: list[dict[str, Any]] = [
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": f"{version}.{group}"},
                "spec": {
                    "group": group,
                    "version": version,
                    "service": {"name": self.service, "namespace": self.namespace, "port": self.port},
                    "caBundle": ca_bundle,
                    "groupPriorityMinimum": 100,
                    "versionPriority": 200 if version == "v1beta2" else 100,
                },
            }
            for group, version in METRICS_APIS
        ]
        return [service, *apiservices]


def _kubectl(kubeconfig: Path, *args: str, stdin: str | None = None, check: bool = True) -> str:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{result.stderr}{result.stdout}")
    return result.stdout


@contextlib.contextmanager
def metrics_apis(
    kubeconfig: Path, *, prometheus_url: str, rules: Path, namespace: str, directory: Path
) -> Iterator[AdapterProcess]:
    """prometheus-adapter running and registered, its APIServices Available; unregistered after.

    APIServices are cluster-wide: one registration at a time per control plane. They are deleted
    before the adapter stops, since an APIService whose server is gone breaks discovery for every
    client (and keeps namespaces from being deleted) until it is removed.
    """
    adapter = AdapterProcess(
        kubeconfig, prometheus_url=prometheus_url, rules=rules, namespace=namespace, directory=directory
    )
    names = [f"{version}.{group}" for group, version in METRICS_APIS]
    try:
        adapter.start()
        _kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(adapter.registration()))
        for name in names:
            _kubectl(kubeconfig, "wait", "--for=condition=Available", f"apiservice/{name}", "--timeout=90s")
        yield adapter
    finally:
        _kubectl(kubeconfig, "delete", "apiservice", *names, "--ignore-not-found", check=False)
        adapter.stop()


def main() -> int:
    print(ensure_adapter())
    return 0


if __name__ == "__main__":
    sys.exit(main())
