"""Zero downtime: MyPage rolled twice, readiness-gated, while customers keep reading it.

The chart rolls MyPage with `maxSurge: 1, maxUnavailable: 0` behind a Service whose endpoints hold
only Ready pods. No kubelet runs on the local control plane, so a `ReadinessBalancer`
(`rental_devenv.balancer`) stands in for the Service: it probes each registered process's `/readyz`
every 200 ms and sends each new request to a backend that answered 200. A roll does what the
Deployment controller, the endpoints controller and the kubelet do, in their order:

1. start the new `rental-operator mypage` process (its own list and watch) and register it;
2. wait until the balancer's probe finds it Ready;
3. take the old one out of rotation (a terminating pod leaves the endpoints before SIGTERM arrives),
   wait for its in-flight requests, then SIGTERM it: it must exit 0.

The data are real: the operator and the reference gateway run first, so every Rental has the status
the saga writes (paid, delivered, texted); then the operator is stopped, so every answer during the
load is known in advance. A few threads read `GET /api/v1/customers/{id}/rentals` with valid tokens
through the balancer for at least 15 s (bounded in count and time) while A is rolled to B and B to C.
Every answer must be 200 with exactly the expected rentals; the figures are printed.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rental_devenv import balancer as balancing
from rental_devenv import testkit
from rental_gateway import testing
from rental_operator.mypage import auth

SECRET = "mypage-rolling-key-0123456789abcdef-0123"
CUSTOMERS = ("kim", "lee", "park", "choi")
RENTALS_PER_CUSTOMER = 2
LOAD_THREADS = 4
LOAD_MIN_SECONDS = 15.0  # the load runs at least this long ...
LOAD_MAX_SECONDS = 120.0  # ... and never longer than this, whatever the rolls do
MAX_REQUESTS_PER_THREAD = 20_000
MIN_REQUESTS = 150  # far below what even a busy 2-core machine serves in LOAD_MIN_SECONDS
SETTLE_SECONDS = 2.0  # steady load before, between and after the rolls
READY_TIMEOUT = 60.0
DRAIN_TIMEOUT = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _normalized(body: dict[str, Any]) -> dict[str, Any]:
    """An answer without its `asOf` (the time of the answer), rentals in name order."""
    rentals = sorted(body["rentals"], key=lambda r: (r["namespace"], r["name"]))
    return {**{k: v for k, v in body.items() if k != "asOf"}, "rentals": rentals}


class MyPage:
    """One `rental-operator mypage` process (a MyPage pod) on a port of its own."""

    def __init__(self, name: str, kubeconfig: Path, namespace: str, log_path: Path) -> None:
        self.name = name
        self.port = _free_port()
        self.log_path = log_path
        env = {
            **os.environ,
            "PYTHONSAFEPATH": "1",
            "RENTAL_NAMESPACES": namespace,
            "RENTAL_MYPAGE_HOST": "127.0.0.1",
            "RENTAL_MYPAGE_PORT": str(self.port),
            "RENTAL_MYPAGE_AUTH": "token",
            "RENTAL_MYPAGE_TOKEN_SECRET": SECRET,
        }
        env.pop("KUBECONFIG", None)
        command = [
            str(Path(sys.executable).parent / "rental-operator"),
            "mypage",
            f"--kubeconfig={kubeconfig}",
        ]
        self.started_at = time.monotonic()
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, as the kubelet sends it; the exit status (killed after `timeout`: -9)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


MyPageFactory = Callable[[str], MyPage]


@pytest.fixture
def mypages(
    kubeconfig: Path, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[MyPageFactory]:
    started: list[MyPage] = []

    def start(name: str) -> MyPage:
        process = MyPage(name, kubeconfig, namespace, tmp_path / f"mypage-{name}.log")
        started.append(process)
        return process

    yield start
    testkit.stop_all(started, failed=testkit.call_failed(request.node), lines=60)


@pytest.fixture
def balancer() -> Iterator[balancing.ReadinessBalancer]:
    with balancing.ReadinessBalancer(probe_interval=0.2) as running:
        yield running


def _settled(cluster: testkit.Cluster, names: list[str]) -> bool:
    """Every rental confirmed, delivered and texted: the operator has nothing left to write."""
    rentals = {r["metadata"]["name"]: r.get("status", {}) for r in cluster.items("rentals")}
    return all(
        rentals.get(n, {}).get("phase") == "Confirmed"
        and rentals[n].get("delivery", {}).get("phase") == "Delivered"
        and rentals[n].get("notifiedSeq") == rentals[n]["history"][-1]["seq"]
        for n in names
    )


@pytest.fixture
def rentals_at_rest(kubeconfig: Path, namespace: str, crds: Path, tmp_path: Path) -> dict[str, list[Any]]:
    """Rentals the real operator took through the saga, then left at rest (operator stopped).

    Returns, per customer, the sorted (name, phase, delivery phase, tracking number) of their rentals.
    """
    cluster = testkit.Cluster(kubeconfig, namespace)
    names = [f"{c}-{i}" for c in CUSTOMERS for i in range(1, RENTALS_PER_CUSTOMER + 1)]
    with testing.GatewayProcess(
        "--quiet", "--auto-deliver-seconds", "1", db=tmp_path / "ledger.sqlite3", log_path=tmp_path / "gw.log"
    ) as gateway:
        operator = testkit.OperatorProcess(
            kubeconfig,
            env={
                "RENTAL_PAYMENT_URL": gateway.url,
                "RENTAL_SHIPPING_URL": gateway.url,
                "RENTAL_SMS_URL": gateway.url,
                "RENTAL_NAMESPACES": namespace,
                "RENTAL_SHIPPING_POLL_SECONDS": "0.5",
                "RENTAL_PAYMENT_RETRY_SECONDS": "0.5",
                "RENTAL_MYPAGE_ENABLED": "false",
            },
            log_path=tmp_path / "operator.log",
        )
        operator.start()
        try:
            cluster.create(testkit.purifier("aqua", stock=len(names)))
            for name in names:
                cluster.create(testkit.rental(name, "aqua", customer=name.rpartition("-")[0]))
            testkit.wait_for(
                lambda: _settled(cluster, names), timeout=120, what=f"{len(names)} rentals delivered"
            )
        except BaseException:
            print(f"--- operator log ---\n{operator.log_tail(60)}")
            raise
        finally:
            operator.stop()
    expected: dict[str, list[Any]] = {c: [] for c in CUSTOMERS}
    for rental in cluster.items("rentals"):
        status = rental["status"]
        expected[rental["spec"]["customer"]["id"]].append(
            (
                rental["metadata"]["name"],
                status["phase"],
                status["delivery"]["phase"],
                status["delivery"]["trackingNumber"],
            )
        )
    return {customer: sorted(rows) for customer, rows in expected.items()}


@dataclass
class Sample:
    """One request through the balancer, as the client saw it."""

    began: float  # time.monotonic()
    finished: float
    seconds: float
    ok: bool
    served_by: str
    detail: str = ""


@dataclass
class Roll:
    old: str
    new: str
    began: float
    ready_seconds: float  # from starting the new process to the balancer's probe finding it Ready
    removed_at: float
    drained: bool
    drained_at: float
    ended: float  # the old process has exited
    exit_code: int


class Load:
    """`LOAD_THREADS` customers' apps reading their rentals through the balancer, on kept-alive
    connections (reconnecting after any error). Bounded: `MAX_REQUESTS_PER_THREAD` and a deadline."""

    def __init__(self, url: str, expected: dict[str, dict[str, Any]]) -> None:
        host, _, port = url.removeprefix("http://").rpartition(":")
        self.address = (host, int(port))
        self.expected = expected
        self.tokens = {c: auth.mint(SECRET.encode(), c, expires=int(time.time()) + 3600) for c in CUSTOMERS}
        self.stopping = threading.Event()
        self.samples: list[list[Sample]] = [[] for _ in range(LOAD_THREADS)]
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(LOAD_THREADS)
        ]
        self.started = 0.0

    def start(self) -> None:
        self.started = time.monotonic()
        for thread in self.threads:
            thread.start()

    def stop(self) -> list[Sample]:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)
        assert not any(t.is_alive() for t in self.threads), "a load thread did not stop"
        assert not self.errors, self.errors
        return sorted((s for samples in self.samples for s in samples), key=lambda s: s.finished)

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(*self.address, timeout=10)

    def _run(self, index: int) -> None:
        samples = self.samples[index]
        deadline = self.started + LOAD_MAX_SECONDS
        connection = self._connect()
        try:
            for n in range(MAX_REQUESTS_PER_THREAD):
                if self.stopping.is_set() or time.monotonic() > deadline:
                    break
                customer = CUSTOMERS[(index + n) % len(CUSTOMERS)]
                sent = time.monotonic()
                began = time.perf_counter()
                try:
                    connection.request(
                        "GET",
                        f"/api/v1/customers/{customer}/rentals",
                        headers={"Authorization": f"Bearer {self.tokens[customer]}"},
                    )
                    response = connection.getresponse()
                    body = response.read()
                    served_by = response.getheader("X-Served-By") or ""
                    seconds = time.perf_counter() - began
                    detail = self._verdict(customer, response.status, body)
                except (OSError, http.client.HTTPException) as error:
                    seconds, served_by, detail = time.perf_counter() - began, "", repr(error)
                    connection.close()
                    connection = self._connect()
                samples.append(Sample(sent, time.monotonic(), seconds, not detail, served_by, detail))
        except BaseException as error:
            self.errors.append(error)
        finally:
            connection.close()

    def _verdict(self, customer: str, status: int, body: bytes) -> str:
        """Empty when the answer is the expected one, else what was wrong."""
        if status != http.HTTPStatus.OK:
            return f"{customer}: HTTP {status}: {body[:200]!r}"
        try:
            answer = _normalized(json.loads(body))
        except (ValueError, KeyError, TypeError) as error:
            return f"{customer}: unreadable answer ({error!r}): {body[:200]!r}"
        return "" if answer == self.expected[customer] else f"{customer}: unexpected rentals: {body[:300]!r}"


def _roll(
    balancer: balancing.ReadinessBalancer, mypages: MyPageFactory, old: MyPage, new_name: str
) -> tuple[Roll, MyPage]:
    """Surge one new MyPage, wait for it to be Ready, then retire the old one (endpoints first)."""
    began = time.monotonic()
    new = mypages(new_name)
    balancer.add(new_name, new.port)
    try:
        balancer.wait_ready(new_name, timeout=READY_TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"MyPage {new_name} never became Ready:\n{new.log_tail()}") from None
    ready_at = balancer.backend(new_name).ready_at
    assert ready_at is not None
    balancer.remove(old.name)
    removed_at = time.monotonic()
    drained = balancer.drain(old.name, timeout=DRAIN_TIMEOUT)
    drained_at = time.monotonic()
    exit_code = old.stop()
    roll = Roll(
        old=old.name,
        new=new_name,
        began=began,
        ready_seconds=ready_at - new.started_at,
        removed_at=removed_at,
        drained=drained,
        drained_at=drained_at,
        ended=time.monotonic(),
        exit_code=exit_code,
    )
    return roll, new


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def test_rolling_mypage_twice_behind_a_readiness_gated_balancer_fails_no_request(
    kubeconfig: Path,
    rentals_at_rest: dict[str, list[Any]],
    mypages: MyPageFactory,
    balancer: balancing.ReadinessBalancer,
) -> None:
    first = mypages("a")
    balancer.add("a", first.port)
    balancer.wait_ready("a", timeout=READY_TIMEOUT)
    first_ready_at = balancer.backend("a").ready_at
    assert first_ready_at is not None

    # What every answer must be: read from A directly, checked against the cluster.
    load = Load(balancer.url, {})
    expected: dict[str, dict[str, Any]] = {}
    for customer in CUSTOMERS:
        connection = http.client.HTTPConnection("127.0.0.1", first.port, timeout=10)
        try:
            connection.request(
                "GET",
                f"/api/v1/customers/{customer}/rentals",
                headers={"Authorization": f"Bearer {load.tokens[customer]}"},
            )
            response = connection.getresponse()
            assert response.status == http.HTTPStatus.OK
            answer = _normalized(json.loads(response.read()))
        finally:
            connection.close()
        shown = sorted(
            (r["name"], r["phase"], r["delivery"]["phase"], r["delivery"]["trackingNumber"])
            for r in answer["rentals"]
        )
        assert shown == rentals_at_rest[customer], f"MyPage A disagrees with the cluster for {customer}"
        assert len(shown) == RENTALS_PER_CUSTOMER
        expected[customer] = answer
    load.expected = expected

    load.start()
    time.sleep(SETTLE_SECONDS)
    roll_1, second = _roll(balancer, mypages, first, "b")
    time.sleep(SETTLE_SECONDS)
    roll_2, _third = _roll(balancer, mypages, second, "c")
    # Keep reading: at least LOAD_MIN_SECONDS in all, and SETTLE_SECONDS on C alone.
    end = max(load.started + LOAD_MIN_SECONDS, roll_2.ended + SETTLE_SECONDS)
    time.sleep(max(0.0, min(end, load.started + LOAD_MAX_SECONDS) - time.monotonic()))
    samples = load.stop()
    stopped = time.monotonic()

    failures = [s for s in samples if not s.ok]
    latencies_ms = [s.seconds * 1000 for s in samples]
    by_backend = {name: sum(s.served_by == name for s in samples) for name in ("a", "b", "c")}
    elapsed = stopped - load.started
    p50, p99 = statistics.median(latencies_ms), _percentile(latencies_ms, 0.99)
    served = "/".join(str(by_backend[name]) for name in ("a", "b", "c"))
    lines = [
        f"\n[mypage roll] {len(samples)} requests in {elapsed:.1f}s ({len(samples) / elapsed:.0f}/s,"
        f" {LOAD_THREADS} threads, kept-alive connections through the balancer), {len(failures)} failed;"
        f" latency p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies_ms):.1f} ms;"
        f" served by a/b/c: {served}",
        f"[mypage roll] a: start to Ready {first_ready_at - first.started_at:.2f}s",
    ]
    for roll in (roll_1, roll_2):
        during = [s for s in samples if roll.began <= s.finished <= roll.ended]
        lines.append(
            f"[mypage roll] {roll.old} -> {roll.new}: {roll.new} start to Ready {roll.ready_seconds:.2f}s;"
            f" roll took {roll.ended - roll.began:.2f}s with {len(during)} requests"
            f" ({sum(not s.ok for s in during)} failed;"
            f" {sum(s.served_by == roll.old for s in during)} by {roll.old},"
            f" {sum(s.served_by == roll.new for s in during)} by {roll.new});"
            f" {roll.old} out of rotation, drained in {roll.drained_at - roll.removed_at:.2f}s"
            f"{'' if roll.drained else ' (NOT drained)'}, exited {roll.exit_code}"
            f" {roll.ended - roll.drained_at:.2f}s after SIGTERM"
        )
    print("\n".join(lines))

    assert not failures, f"{len(failures)} failed requests, first ones: {[s.detail for s in failures[:5]]}"
    assert balancer.unrouted == 0
    assert all(balancer.backend(name).failed == 0 for name in ("a", "b", "c"))
    for roll in (roll_1, roll_2):
        assert roll.drained, f"{roll.old} still had requests in flight after {DRAIN_TIMEOUT}s"
        assert roll.exit_code == 0, f"{roll.old} did not exit cleanly on SIGTERM"
        during = [s for s in samples if roll.began <= s.finished <= roll.ended]
        assert during, f"no request ran while {roll.old} was rolled to {roll.new}"
        # Out of rotation, the old process gets nothing new.
        assert not any(s.served_by == roll.old for s in samples if s.began > roll.removed_at)
    assert all(by_backend.values()), f"every MyPage should have served: {by_backend}"
    assert len(samples) >= MIN_REQUESTS, "too little load to show anything"
