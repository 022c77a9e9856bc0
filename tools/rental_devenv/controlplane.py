"""A real Kubernetes control plane on loopback: etcd, kube-apiserver and kube-controller-manager.

Integration tests, the demo and the benchmarks all need a real API server (admission, CEL validation,
RBAC, garbage collection, watches), and no Docker engine or release download is available, so this
module runs the binaries `rental_devenv.build` compiles. A `ControlPlane` owns one state directory:
certificates, etcd data, component logs, `kubeconfig`, and `state.json` (ports and pids, so that a
separate `rental-controlplane down` can stop what `up` started). Components can be stopped and started
one at a time, which the chaos tests use to restart etcd and the API server.

With a development node (`rental_devenv.node`), `address` is the node's private address instead of
127.0.0.1: pods cannot reach loopback, so the API server binds and advertises that address (the
`kubernetes` Service's endpoint), authorizes kubelets with the Node authorizer and talks to them with
a client certificate of its own. Without a node nothing changes.

Called by `rental_devenv.cli` and by the pytest fixtures in `tests/conftest.py`.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rental_devenv import build, certs

__all__ = ["COMPONENTS", "ControlPlane", "ControlPlaneError"]

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager")
_PR_SET_PDEATHSIG = 1


class ControlPlaneError(RuntimeError):
    """A component failed to start or become ready; the message carries the end of its log."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # Test control planes must not outlive a pytest that was killed: ask the kernel to SIGTERM the
    # child when its parent dies. Linux only, which is where this harness runs.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _pid_alive(pid: int, binary: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return binary.encode() in cmdline.split(b"\0", 1)[0]


@dataclass
class ControlPlane:
    """One local control plane rooted at `directory`."""

    directory: Path
    tie_to_parent: bool = True
    address: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    startup_seconds: dict[str, float] = field(default_factory=dict)
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    @property
    def _pki(self) -> certs.PKI:
        if self.address == "127.0.0.1":
            return certs.ensure_pki(self.directory / "pki")
        return certs.ensure_pki(self.directory / "pki", addresses=(self.address,))

    # -- paths ------------------------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self.ports['apiserver']}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['etcd']}"

    def log_path(self, component: str) -> Path:
        return self.directory / "logs" / f"{component}.log"

    @property
    def _state_file(self) -> Path:
        return self.directory / "state.json"

    # -- lifecycle -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: Path) -> ControlPlane:
        """The control plane a previous `up` recorded in `directory` (for `down` and `status`)."""
        state = json.loads((directory / "state.json").read_text())
        return cls(
            directory=directory,
            tie_to_parent=False,
            address=state.get("address", "127.0.0.1"),
            ports=state["ports"],
            pids=state["pids"],
        )

    def start(self) -> None:
        build.ensure_binaries()
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "logs").mkdir(exist_ok=True)
        for name in ("etcd", "etcd_peer", "apiserver", "controller_manager"):
            self.ports.setdefault(name, _free_port())
        self._write_kubeconfig()
        for component in COMPONENTS:
            self.start_component(component)

    def stop(self) -> None:
        for component in reversed(COMPONENTS):
            self.stop_component(component)

    def start_component(self, component: str) -> None:
        started = time.monotonic()
        binaries = build.ensure_binaries()
        binary = {
            "etcd": binaries.etcd,
            "kube-apiserver": binaries.kube_apiserver,
            "kube-controller-manager": binaries.kube_controller_manager,
        }[component]
        args = {
            "etcd": self._etcd_args,
            "kube-apiserver": self._apiserver_args,
            "kube-controller-manager": self._controller_manager_args,
        }[component]()
        log = self.log_path(component).open("ab")
        process = subprocess.Popen(
            [str(binary), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            # Only prctl() runs between fork and exec, which is safe even with threads around.
            preexec_fn=_die_with_parent if self.tie_to_parent else None,  # noqa: PLW1509
        )
        log.close()
        self._processes[component] = process
        self.pids[component] = process.pid
        self._save_state()
        ready: Callable[[], bool] = {
            "etcd": self._etcd_ready,
            "kube-apiserver": self._apiserver_ready,
            "kube-controller-manager": self._controller_manager_ready,
        }[component]
        self._wait(component, ready, timeout=180.0)
        self.startup_seconds[component] = time.monotonic() - started

    def stop_component(self, component: str, *, kill: bool = False) -> None:
        pid = self.pids.pop(component, None)
        process = self._processes.pop(component, None)
        if pid is None:
            return
        binary = component
        if process is None and not _pid_alive(pid, binary):
            self._save_state()
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if process is not None:
                if process.poll() is not None:
                    break
            elif not _pid_alive(pid, binary):
                break
            time.sleep(0.1)
        else:
            _kill_hard(pid)
            if process is not None:
                process.wait(timeout=10)
        self._save_state()

    def running(self) -> dict[str, bool]:
        return {c: c in self.pids and _pid_alive(self.pids[c], c) for c in COMPONENTS}

    # -- component arguments ------------------------------------------------------------------------------
    def _etcd_args(self) -> list[str]:
        peer = f"http://127.0.0.1:{self.ports['etcd_peer']}"
        return [
            "--name=default",
            f"--data-dir={self.directory / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            # Tests and demos do not need durability against power loss; fsync dominates write latency.
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]

    def _apiserver_args(self) -> list[str]:
        pki = self._pki
        args = [
            f"--etcd-servers={self.etcd_url}",
            f"--secure-port={self.ports['apiserver']}",
            "--bind-address=127.0.0.1",
            # Without an explicit address the server looks for a default route and may not start.
            "--advertise-address=127.0.0.1",
            # The endpoint reconciler refuses loopback addresses; nothing here needs the in-cluster
            # `kubernetes` Service endpoints (no pods run without a kubelet).
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            # RBAC for real, so the Helm chart's least-privilege rules can be tested.
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            "--profiling=false",
            # The aggregation layer, so extension API servers (prometheus-adapter's custom and external
            # metrics APIs) can be registered with an APIService: the API server authenticates to them
            # with the front-proxy client certificate and passes the user in X-Remote-* headers.
            # Aggregator routing stays off: an APIService then reaches its Service by the Service's
            # address, and a Service of type ExternalName (`localhost`) is the one kind of address
            # that leads to a server bound to 127.0.0.1 (endpoint validation refuses loopback IPs).
            f"--requestheader-client-ca-file={pki.front_proxy_ca_cert}",
            f"--requestheader-allowed-names={certs.FRONT_PROXY_CLIENT}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki.front_proxy_client_cert}",
            f"--proxy-client-key-file={pki.front_proxy_client_key}",
        ]
        if self.address == "127.0.0.1":
            return args
        kubelet_cert, kubelet_key = certs.ensure_client(
            pki,
            "apiserver-kubelet-client",
            common_name="kube-apiserver-kubelet-client",
            organization="system:masters",
        )
        node_args = {
            "--bind-address": self.address,
            "--advertise-address": self.address,
            # The default (lease) reconciler keeps the `kubernetes` Service pointing at the node address.
            "--endpoint-reconciler-type": "lease",
            "--authorization-mode": "Node,RBAC",
            "--kubelet-client-certificate": str(kubelet_cert),
            "--kubelet-client-key": str(kubelet_key),
            "--kubelet-preferred-address-types": "InternalIP",
        }
        kept = [a for a in args if a.split("=", 1)[0] not in node_args]
        return kept + [f"{flag}={value}" for flag, value in node_args.items()]

    def _controller_manager_args(self) -> list[str]:
        pki = self._pki
        kubeconfig = str(self.kubeconfig)
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['controller_manager']}",
            "--leader-elect=false",
            f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_cert}",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
            # Each controller authenticates as its own service account, as in a real cluster.
            "--use-service-account-credentials=true",
            "--controllers=*",
            # Autoscaling tests want the HPA to react in seconds rather than the default 15 s.
            "--horizontal-pod-autoscaler-sync-period=5s",
        ]

    # -- readiness ----------------------------------------------------------------------------------------
    def _wait(self, component: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        process = self._processes.get(component)
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise ControlPlaneError(
                    f"{component} exited with code {process.returncode} during start-up; "
                    f"end of {self.log_path(component)}:\n{self._tail(component)}"
                )
            try:
                if ready():
                    return
            except (OSError, urllib.error.URLError, ssl.SSLError):
                pass
            time.sleep(0.2)
        raise ControlPlaneError(
            f"{component} not ready after {timeout:.0f}s; end of {self.log_path(component)}:\n"
            f"{self._tail(component)}"
        )

    def _tail(self, component: str, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path(component).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _etcd_ready(self) -> bool:
        with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as response:
            return bool(json.load(response).get("health") == "true")

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self._pki.ca_cert))
        context.load_cert_chain(str(self._pki.admin_cert), str(self._pki.admin_key))
        return context

    def get(self, path: str) -> tuple[int, bytes]:
        """An authenticated GET against the API server (admin credentials)."""
        try:
            with urllib.request.urlopen(
                f"{self.server}{path}", context=self._ssl_context(), timeout=5
            ) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def _apiserver_ready(self) -> bool:
        return self.get("/readyz")[0] == 200

    def _controller_manager_ready(self) -> bool:
        # The default ServiceAccount appears once the controller manager's controllers run: that is
        # what tests actually depend on (pods, tokens, garbage collection share the same start-up).
        return self.get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200

    # -- files --------------------------------------------------------------------------------------------
    def _write_kubeconfig(self) -> None:
        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "purifier-rental-local",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": b64(self._pki.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": "purifier-rental-admin",
                    "user": {
                        "client-certificate-data": b64(self._pki.admin_cert),
                        "client-key-data": b64(self._pki.admin_key),
                    },
                }
            ],
            "contexts": [
                {
                    "name": "purifier-rental-local",
                    "context": {"cluster": "purifier-rental-local", "user": "purifier-rental-admin"},
                }
            ],
            "current-context": "purifier-rental-local",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.chmod(0o600)

    def _save_state(self) -> None:
        state = {"ports": self.ports, "pids": self.pids, "address": self.address}
        self._state_file.write_text(json.dumps(state, indent=2))


def _kill_hard(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
