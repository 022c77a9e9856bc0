"""Running the operator as a real process, and waiting on the cluster, for tests, demo and benchmarks.

End-to-end checks must exercise what users run: the `rental-operator` command in its own process
(so it can be SIGKILLed and restarted), against the real control plane and the reference partner
gateway. `OperatorProcess` starts and stops it; `Cluster` reads the project's objects with the
Kubernetes client (much faster than shelling out to kubectl in a polling loop); `wait_for` polls
with a deadline and says what it was waiting for when it gives up.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import kubernetes
import yaml

from rental_devenv import invariants

__all__ = ["Cluster", "OperatorProcess", "call_failed", "purifier", "rental", "stop_all", "wait_for"]

T = TypeVar("T")
GROUP, VERSION = "rental.purifier.io", "v1alpha1"


def wait_for(predicate: Callable[[], T], *, timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll `predicate` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")


class _Stoppable(Protocol):
    log_path: Path

    def stop(self) -> Any: ...

    def log_tail(self, lines: int = ...) -> str: ...


def call_failed(node: object) -> bool:
    """Whether the test `node` failed in its call phase (tests/conftest.py records the reports)."""
    report = getattr(node, "rep_call", None)
    return bool(report is not None and report.failed)


def stop_all(processes: list[Any], *, failed: bool, lines: int = 80) -> None:
    """Stop every process a fixture started; after a failed test, print the end of each one's log."""
    stoppable: list[_Stoppable] = processes
    for process in stoppable:
        process.stop()
    if failed:
        for process in stoppable:
            print(f"--- {process.log_path} ---\n{process.log_tail(lines)}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OperatorProcess:
    """`rental-operator run` as a child process, configured through RENTAL_* variables."""

    def __init__(
        self,
        kubeconfig: Path,
        *,
        env: Mapping[str, str],
        log_path: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.kubeconfig = kubeconfig
        self.env = dict(env)
        self.log_path = log_path or Path(tempfile.mkdtemp(prefix="rental-operator-")) / "operator.log"
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.metrics_port = 0
        self.mypage_port = 0

    def start(self, *, timeout: float = 60.0) -> None:
        port = _free_port()
        command = [
            str(Path(sys.executable).parent / "rental-operator"),
            "run",
            f"--kubeconfig={self.kubeconfig}",
            f"--liveness=http://127.0.0.1:{port}/healthz",
            *self.extra_args,
        ]
        # Several operators may run on one machine (tests, HA, the demo): give each its own ports,
        # bound to loopback, unless the caller chose.
        self.metrics_port = int(self.env.get("RENTAL_METRICS_PORT") or _free_port())
        self.mypage_port = int(self.env.get("RENTAL_MYPAGE_PORT") or _free_port())
        local = {
            "RENTAL_METRICS_PORT": str(self.metrics_port),
            "RENTAL_METRICS_ADDRESS": "127.0.0.1",
            "RENTAL_MYPAGE_PORT": str(self.mypage_port),
            "RENTAL_MYPAGE_HOST": "127.0.0.1",
        }
        env = {**os.environ, "PYTHONSAFEPATH": "1", **local, **self.env}
        env.pop("KUBECONFIG", None)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.starts += 1

        def live() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the operator exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        wait_for(live, timeout=timeout, what="the operator's liveness endpoint")

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the operator was never started")
        return self.process.pid

    def metrics(self) -> str:
        """The operator's /metrics page, as Prometheus would scrape it."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: no cleanup, no last writes, as a crashed node would leave it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Cluster:
    """The project's objects in one namespace, read and written with the Kubernetes client."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self.namespace = namespace
        self.client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        # The generated client's return types are loose; these wrappers give the project's types.
        self.custom: Any = kubernetes.client.CustomObjectsApi(self.client)
        self.core: Any = kubernetes.client.CoreV1Api(self.client)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        plural = {"Purifier": "purifiers", "Rental": "rentals"}[body["kind"]]
        body = {"apiVersion": f"{GROUP}/{VERSION}", **body}
        return dict(self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, body))

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(
                self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)
            )
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def items(self, plural: str) -> list[dict[str, Any]]:
        listing = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, plural)
        return list(listing["items"])

    def patch(self, plural: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return dict(
            self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                plural,
                name,
                patch,
                _content_type="application/merge-patch+json",
            )
        )

    def delete(self, plural: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)

    def phase(self, plural: str, name: str) -> str | None:
        phase = ((self.get(plural, name) or {}).get("status") or {}).get("phase")
        return str(phase) if phase is not None else None

    def phases(self, plural: str = "rentals") -> dict[str, str | None]:
        return {o["metadata"]["name"]: o.get("status", {}).get("phase") for o in self.items(plural)}

    def holders(self, purifier_name: str) -> list[str]:
        """The rentals of this Purifier whose own status records a unit (StockReserved True), sorted.

        At rest the Purifier's status.allocated must equal their number: that is the stock invariant.
        """
        return sorted(
            o["metadata"]["name"]
            for o in self.items("rentals")
            if o["spec"]["purifier"] == purifier_name and invariants.holds_unit(o)
        )

    def events(self, name: str) -> list[str]:
        found = self.core.list_namespaced_event(self.namespace, field_selector=f"involvedObject.name={name}")
        return [event.reason for event in found.items]

    def apply_yaml(self, text: str) -> None:
        for document in yaml.safe_load_all(text):
            if document:
                self.create(document)


def purifier(name: str, *, stock: int, fee: int = 30_000, currency: str = "KRW") -> dict[str, Any]:
    return {
        "kind": "Purifier",
        "metadata": {"name": name},
        "spec": {"model": f"Model {name}", "monthlyFee": fee, "currency": currency, "stock": stock},
    }


def rental(name: str, purifier_name: str, *, customer: str = "cust-1", months: int = 12) -> dict[str, Any]:
    return {
        "kind": "Rental",
        "metadata": {"name": name},
        "spec": {
            "purifier": purifier_name,
            "months": months,
            "customer": {"id": customer, "name": "Kim", "phone": "+821012345678", "address": "Seoul"},
        },
    }
