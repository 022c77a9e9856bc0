"""MyPage against the real control plane: the operator (MyPage inside), `rental-operator mypage` alone,
the reference gateway, each as its own process, and a client that reads MyPage as a customer would.

Same pattern as tests/e2e/conftest.py (a namespace, gateway and operator per test), plus the MyPage
process and a gate in front of the API server for the readiness test. Every process gets ports of its
own, so these tests run beside any other operator on the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rental_devenv import testkit
from rental_gateway import testing
from rental_operator.mypage import auth

SECRET = "mypage-test-key-0123456789abcdef-0123"
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"

# What axe-core reports per violation: the rule, its impact, and where (selector, markup, why).
_AXE_RUN = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({target: n.target, html: n.html, summary: n.failureSummary})),
  }));
}"""
AXE_BLOCKING = ("serious", "critical")

GatewayFactory = Callable[..., testing.GatewayProcess]
OperatorFactory = Callable[..., "OperatorWithMyPage"]
MyPageFactory = Callable[..., "MyPageProcess"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def token(customer: str) -> str:
    return auth.mint(SECRET.encode(), customer, expires=int(time.time()) + 3600)


class MyPageClient:
    """Reads one MyPage (inside the operator or alone) over HTTP, as a customer's browser or app."""

    def __init__(self, url: str) -> None:
        self.url = url

    def status(self, path: str, headers: dict[str, str] | None = None) -> int:
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return 0  # not listening (yet)

    def ready(self) -> bool:
        return self.status("/readyz") == 200

    def rentals(self, customer: str, *, as_customer: str | None = None) -> dict[str, Any]:
        """The JSON API's answer for `customer`, with a token of `as_customer` (default: the same)."""
        headers = {"Authorization": f"Bearer {token(as_customer or customer)}"}
        request = urllib.request.Request(f"{self.url}/api/v1/customers/{customer}/rentals", headers=headers)
        with urllib.request.urlopen(request, timeout=5) as response:
            body: dict[str, Any] = json.load(response)
            return body

    def rental(self, customer: str, name: str) -> dict[str, Any] | None:
        found = [r for r in self.rentals(customer)["rentals"] if r["name"] == name]
        return found[0] if found else None

    def page_link(self, customer: str) -> str:
        return auth.page_link(self.url, customer, token(customer))

    def page(self, customer: str, *, language: str = "en") -> str:
        """The customer's page in `language` (English unless asked: the tests read English words)."""
        request = urllib.request.Request(self.page_link(customer), headers={"Accept-Language": language})
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(response.read().decode())


class OperatorWithMyPage(testkit.OperatorProcess):
    """`rental-operator run` with MyPage on a port of its own."""

    def __init__(self, *args: Any, mypage_port: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mypage = MyPageClient(f"http://127.0.0.1:{mypage_port}")


class MyPageProcess:
    """`rental-operator mypage` as a child process: its own informer, no operator."""

    def __init__(self, kubeconfig: Path, *, namespace: str, log_path: Path, env: dict[str, str]) -> None:
        self.kubeconfig = kubeconfig
        self.port = free_port()
        self.metrics_port = free_port()
        self.log_path = log_path
        self.env = {
            **os.environ,
            "PYTHONSAFEPATH": "1",
            "RENTAL_NAMESPACES": namespace,
            "RENTAL_MYPAGE_HOST": "127.0.0.1",
            "RENTAL_MYPAGE_PORT": str(self.port),
            "RENTAL_MYPAGE_TOKEN_SECRET": SECRET,
            **env,
        }
        self.env.pop("KUBECONFIG", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.client = MyPageClient(f"http://127.0.0.1:{self.port}")

    def start(self, *, wait_ready: bool = True, timeout: float = 60.0) -> None:
        command = [
            str(Path(sys.executable).parent / "rental-operator"),
            "mypage",
            f"--kubeconfig={self.kubeconfig}",
            # As the chart runs it: metrics on a port of their own; and the access log on, so tests
            # can check what it keeps.
            f"--metrics-port={self.metrics_port}",
            "--access-log",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env)

        def listening() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"mypage exited with {self.process.returncode}:\n{self.log_tail()}")
            return self.client.status("/healthz") == 200

        testkit.wait_for(listening, timeout=timeout, what="MyPage's /healthz")
        if wait_ready:
            testkit.wait_for(self.client.ready, timeout=timeout, what="MyPage's /readyz")

    def metrics(self) -> str:
        """The metrics port's Prometheus text."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Gate:
    """A TCP relay in front of the API server that holds every connection until `open()`.

    Lets a test start MyPage whose initial listing cannot finish yet, deterministically.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._opened = threading.Event()
        self._closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def open(self) -> None:
        self._opened.set()

    def close(self) -> None:
        self._closing.set()
        self._opened.set()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        self._opened.wait()
        if self._closing.is_set():
            return
        upstream = socket.create_connection(self.target)
        self._sockets.append(upstream)

        def pipe(source: socket.socket, sink: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (source, sink):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[testing.GatewayProcess]:
    """A gateway that delivers shipments one second after they leave."""
    process = testing.GatewayProcess(
        "--quiet",
        "--auto-deliver-seconds",
        "1",
        db=tmp_path / "ledger.sqlite3",
        log_path=tmp_path / "gateway.log",
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture
def operator_factory(
    kubeconfig: Path, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[OperatorFactory]:
    started: list[OperatorWithMyPage] = []

    def start(gateway: testing.GatewayProcess, **settings: str) -> OperatorWithMyPage:
        mypage_port = free_port()
        env = {
            "RENTAL_PAYMENT_URL": gateway.url,
            "RENTAL_SHIPPING_URL": gateway.url,
            "RENTAL_SMS_URL": gateway.url,
            "RENTAL_NAMESPACES": namespace,
            "RENTAL_SHIPPING_POLL_SECONDS": "0.5",
            "RENTAL_PAYMENT_RETRY_SECONDS": "0.5",
            "RENTAL_METRICS_PORT": str(free_port()),
            "RENTAL_MYPAGE_HOST": "127.0.0.1",
            "RENTAL_MYPAGE_PORT": str(mypage_port),
            "RENTAL_MYPAGE_TOKEN_SECRET": SECRET,
            **{f"RENTAL_{key.upper()}": value for key, value in settings.items()},
        }
        process = OperatorWithMyPage(
            kubeconfig, env=env, log_path=tmp_path / "operator.log", mypage_port=mypage_port
        )
        started.append(process)
        process.start()
        testkit.wait_for(process.mypage.ready, timeout=30, what="the operator's MyPage /readyz")
        return process

    yield start
    testkit.stop_all(started, failed=testkit.call_failed(request.node), lines=80)


@pytest.fixture
def mypage_factory(
    kubeconfig: Path, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[MyPageFactory]:
    started: list[MyPageProcess] = []

    def start(
        *, kubeconfig_path: Path | None = None, wait_ready: bool = True, **settings: str
    ) -> MyPageProcess:
        env = {f"RENTAL_{key.upper()}": value for key, value in settings.items()}
        process = MyPageProcess(
            kubeconfig_path or kubeconfig,
            namespace=namespace,
            log_path=tmp_path / f"mypage-{len(started)}.log",
            env=env,
        )
        started.append(process)
        process.start(wait_ready=wait_ready)
        return process

    yield start
    testkit.stop_all(started, failed=testkit.call_failed(request.node), lines=80)


@pytest.fixture
def gated_kubeconfig(kubeconfig: Path, tmp_path: Path) -> Iterator[tuple[Path, Gate]]:
    """A kubeconfig whose API server is reached through a `Gate` (closed until the test opens it)."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    host, _, port = cluster["server"].removeprefix("https://").rpartition(":")
    gate = Gate((host, int(port)))
    # The serving certificate names 127.0.0.1, whatever the port: TLS through the relay still verifies.
    cluster["server"] = f"https://127.0.0.1:{gate.port}"
    path = tmp_path / "gated-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    yield path, gate
    gate.close()


@pytest.fixture
def cluster(kubeconfig: Path, namespace: str, crds: Path) -> testkit.Cluster:
    return testkit.Cluster(kubeconfig, namespace)


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


class Axe:
    """Screenshots and axe-core (`rental_devenv.axe`, from npm) on a Playwright page, in the light
    and the dark colour scheme.

    The script goes in through the DevTools protocol (`page.evaluate`), which the pages' strict CSP
    does not govern, so the pages are checked as served. `shoot` saves `artifacts/<name>.png` and
    checks the page; every check is written to `artifacts/axe/<name>-<scheme>.json`, and a serious or
    critical violation fails the test, naming the rule and the nodes.
    """

    def __init__(self, source: str, artifacts: Path) -> None:
        self.source = source
        self.artifacts = artifacts
        self.folder = artifacts / "axe"
        self.folder.mkdir(parents=True, exist_ok=True)

    def shoot(self, page: Any, name: str) -> dict[str, dict[str, int]]:
        """`artifacts/<name>.png` (the whole page), then `check`."""
        page.screenshot(path=str(self.artifacts / f"{name}.png"), full_page=True)
        return self.check(page, name)

    def check(self, page: Any, name: str) -> dict[str, dict[str, int]]:
        """Counts by impact per colour scheme; fails on a serious or critical violation."""
        counts: dict[str, dict[str, int]] = {}
        blocking: list[str] = []
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            if not page.evaluate("() => typeof window.axe === 'object'"):
                page.evaluate(self.source)
            violations: list[dict[str, Any]] = page.evaluate(_AXE_RUN)
            (self.folder / f"{name}-{scheme}.json").write_text(json.dumps(violations, indent=2) + "\n")
            found = {impact: 0 for impact in ("critical", "serious", "moderate", "minor")}
            for violation in violations:
                found[violation["impact"] or "minor"] += 1
                if violation["impact"] in AXE_BLOCKING:
                    nodes = "; ".join(
                        f"{n['target']} {n['html']} ({n['summary']})" for n in violation["nodes"]
                    )
                    blocking.append(f"{scheme} {violation['impact']} {violation['id']}: {nodes}")
            counts[scheme] = found
            print(f"axe {name} [{scheme}]: {found}")
        page.emulate_media(color_scheme="light")
        assert not blocking, f"axe on {name} ({page.url}):\n" + "\n".join(blocking)
        return counts


@pytest.fixture(scope="session")
def axe() -> Axe:
    """Screenshots and the accessibility check for browser tests (`axe.shoot(page, "web-catalog-ko")`)."""
    from rental_devenv import axe as axe_core  # noqa: PLC0415

    return Axe(axe_core.ensure_axe().read_text(), ARTIFACTS)


def pytest_configure(config: pytest.Config) -> None:
    # Also belongs in pyproject.toml's markers; registered here so this folder runs on its own.
    config.addinivalue_line("markers", "browser: drives Debian's headless Chromium with Playwright")
