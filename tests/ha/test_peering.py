"""High availability: operator replicas peered through Kopf (one active, the others standing by).

Two real `rental-operator` processes share a KopfPeering object, as the chart's replicas do:
- failover: the active one is SIGKILLed in the middle of a batch of rentals; the standby takes over
  once the dead replica's peering record expires (`--peering-lifetime`) and every rental completes,
  charged, shipped and texted once. The takeover time is printed.
- rolling update, as the chart's Deployment does it (maxSurge 1, maxUnavailable 0): while rentals keep
  arriving, a new process starts (the newest replica leads by default), then the old one gets
  SIGTERM. No rental is lost or done twice; creation-to-Confirmed latencies are printed.
Every loop is bounded in count and time.
"""

from __future__ import annotations

import collections
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from rental_devenv import helm, testkit
from rental_gateway import testing


def _free_port() -> int:
    """A free port on loopback for a server of the operator (metrics), so replicas never collide."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


PEERING = "rental-ha"
LIFETIME_SECONDS = 10
PEERING_CRDS = helm.CHART / "crds" / "kopf-peering.yaml"


@pytest.fixture(scope="session")
def peering_flags() -> None:
    """The replicas need `run --priority` and `--peering-lifetime` (the chart passes the latter)."""
    usage = subprocess.run(
        [str(Path(sys.executable).parent / "rental-operator"), "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    missing = [flag for flag in ("--priority", "--peering-lifetime") if flag not in usage]
    if missing:
        pytest.fail(f"`rental-operator run` lacks {missing}: peered replicas cannot be told apart")


@pytest.fixture
def peering(peering_flags: None, kubectl: Any, namespace: str) -> str:
    """Kopf's peering CRDs from the chart, and the namespace's KopfPeering object the chart would make."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(PEERING_CRDS))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(PEERING_CRDS))
    kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=f"apiVersion: kopf.dev/v1\nkind: KopfPeering\nmetadata:\n  name: {PEERING}\n",
    )
    return PEERING


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[testing.GatewayProcess]:
    with testing.GatewayProcess(
        "--quiet", "--auto-deliver-seconds", "1", db=tmp_path / "ledger.sqlite3", log_path=tmp_path / "gw.log"
    ) as process:
        yield process


OperatorFactory = Callable[..., testkit.OperatorProcess]


@pytest.fixture
def replica(
    kubeconfig: Path,
    namespace: str,
    peering: str,
    gateway: testing.GatewayProcess,
    *,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[OperatorFactory]:
    """`replica(name, *extra_args)` starts one peered operator process (not waiting for liveness)."""
    started: list[testkit.OperatorProcess] = []

    def start(name: str, *extra_args: str) -> testkit.OperatorProcess:
        process = testkit.OperatorProcess(
            kubeconfig,
            env={
                "RENTAL_PAYMENT_URL": gateway.url,
                "RENTAL_SHIPPING_URL": gateway.url,
                "RENTAL_SMS_URL": gateway.url,
                "RENTAL_NAMESPACES": namespace,
                "RENTAL_SHIPPING_POLL_SECONDS": "0.5",
                "RENTAL_PAYMENT_RETRY_SECONDS": "0.5",
                "RENTAL_METRICS_PORT": str(_free_port()),
                "RENTAL_METRICS_ADDRESS": "127.0.0.1",
                "RENTAL_MYPAGE_ENABLED": "false",
            },
            log_path=tmp_path / f"{name}.log",
            extra_args=(
                f"--peering={peering}",
                f"--peering-lifetime={LIFETIME_SECONDS}",
                "--verbose",
                *extra_args,
            ),
        )
        started.append(process)
        process.start()
        return process

    yield start
    testkit.stop_all(started, failed=testkit.call_failed(request.node), lines=60)


def _done(cluster: testkit.Cluster, names: list[str]) -> bool:
    """Every rental confirmed and delivered, and every entry of its history texted.

    (A delivery that went from Shipping to Delivered while no replica was active is seen Delivered
    directly, so a rental's history has 4 or 5 entries.)
    """
    rentals = {r["metadata"]["name"]: r.get("status", {}) for r in cluster.items("rentals")}
    return all(
        rentals.get(n, {}).get("phase") == "Confirmed"
        and rentals[n].get("delivery", {}).get("phase") == "Delivered"
        and rentals[n].get("notifiedSeq") == rentals[n]["history"][-1]["seq"]
        for n in names
    )


def _assert_once_each(gateway: testing.GatewayProcess, namespace: str, names: list[str]) -> None:
    ledger = gateway.ledger()
    charges = collections.Counter(p["reference"] for p in ledger["payments"])
    assert charges == {f"{namespace}/{n}": 1 for n in names}, "a rental was charged twice or not at all"
    # Period 1 only (calendar months: period 2 is weeks away), one month's fee each.
    assert all(p["status"] == "approved" and p["amount"] == 30_000 for p in ledger["payments"])
    shipments = collections.Counter(s["reference"] for s in ledger["shipments"])
    assert shipments == {f"{namespace}/{n}": 1 for n in names}
    texts = collections.Counter(m["reference"] for m in ledger["messages"])
    assert set(texts.values()) == {1}, "a transition was texted twice"


def _peers(kubectl: Any, namespace: str) -> dict[str, Any]:
    status = kubectl("get", "kopfpeering", PEERING, "-n", namespace, "-o", "jsonpath={.status}").stdout
    return dict(json.loads(status)) if status else {}


def test_standby_takes_over_when_the_active_replica_is_killed(
    replica: OperatorFactory, kubectl: Any, namespace: str, kubeconfig: Path, gateway: testing.GatewayProcess
) -> None:
    cluster = testkit.Cluster(kubeconfig, namespace)
    active = replica("active", "--priority=200")
    standby = replica("standby", "--priority=100")
    testkit.wait_for(
        lambda: len(_peers(kubectl, namespace)) == 2, timeout=30, what="both replicas in the peering"
    )
    # A peered replica starts paused and resumes only when no live peer outranks it.
    testkit.wait_for(
        lambda: "Resuming operations" in active.log_path.read_text(),
        timeout=30,
        what="the active replica to run",
    )
    time.sleep(2)
    assert "Resuming operations" not in standby.log_path.read_text(), "the standby is not standing by"
    cluster.create(testkit.purifier("aqua", stock=40))
    before = [f"a{i:02d}" for i in range(20)]
    for name in before:
        cluster.create(testkit.rental(name, "aqua", customer=f"c-{name}"))
    testkit.wait_for(
        lambda: sum(p == "Confirmed" for p in cluster.phases().values()) >= 3,
        timeout=60,
        what="some progress",
    )
    active.kill()
    killed_at = time.monotonic()
    at_kill = cluster.phases()
    assert not all(p == "Confirmed" for p in at_kill.values()), "the kill came too late to test anything"
    # Rentals applied after the kill can only be taken by the standby.
    after = [f"b{i:02d}" for i in range(10)]
    for name in after:
        cluster.create(testkit.rental(name, "aqua", customer=f"c-{name}"))
    testkit.wait_for(
        lambda: any(cluster.phase("rentals", n) is not None for n in after),
        timeout=LIFETIME_SECONDS * 4,
        what="the standby picking up new rentals",
        interval=0.1,
    )
    takeover = time.monotonic() - killed_at
    testkit.wait_for(
        lambda: _done(cluster, before + after), timeout=120, what="all 30 rentals delivered and texted"
    )
    completed = time.monotonic() - killed_at
    print(
        f"\n[ha] active SIGKILLed with {sum(p == 'Confirmed' for p in at_kill.values())}/20 confirmed;"
        f" standby took over after {takeover:.1f}s (peering lifetime {LIFETIME_SECONDS}s);"
        f" all 30 rentals delivered {completed:.1f}s after the kill"
    )
    assert takeover <= LIFETIME_SECONDS + 10
    assert "Resuming operations" in standby.log_path.read_text()
    _assert_once_each(gateway, namespace, before + after)
    purifier = cluster.get("purifiers", "aqua")
    assert purifier is not None
    assert cluster.holders("aqua") == sorted(before + after)
    assert purifier["status"]["allocated"] == len(before + after)
    assert purifier["status"]["available"] == 10


def _latencies(cluster: testkit.Cluster, names: list[str]) -> list[float]:
    """Seconds from each rental's creation to its Confirmed history entry."""
    seconds = []
    for rental in cluster.items("rentals"):
        if rental["metadata"]["name"] not in names:
            continue
        created = datetime.fromisoformat(rental["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
        for entry in rental["status"].get("history", []):
            if entry.get("kind", "Rental") == "Rental" and entry["phase"] == "Confirmed":
                confirmed = datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
                seconds.append((confirmed - created).total_seconds())
                break
    return seconds


def test_rolling_update_new_replica_first_loses_no_rental(
    replica: OperatorFactory, kubectl: Any, namespace: str, kubeconfig: Path, gateway: testing.GatewayProcess
) -> None:
    cluster = testkit.Cluster(kubeconfig, namespace)
    old = replica("old")  # default priority: the start time, so a later replica leads
    cluster.create(testkit.purifier("aqua", stock=60))
    names: list[str] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def load() -> None:
        # One rental every 0.15 s, at most 50 and at most 30 s: bounded in count and time.
        writer = testkit.Cluster(kubeconfig, namespace)
        deadline = time.monotonic() + 30
        try:
            while not stop.is_set() and len(names) < 50 and time.monotonic() < deadline:
                name = f"roll-{len(names):02d}"
                writer.create(testkit.rental(name, "aqua", customer=f"c-{name}"))
                names.append(name)
                time.sleep(0.15)
        except BaseException as error:
            errors.append(error)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    testkit.wait_for(lambda: len(names) >= 10, timeout=20, what="rentals arriving")
    # The roll: the new replica is up (live) before the old one is asked to stop.
    new = replica("new")
    rolled_at = len(names)
    testkit.wait_for(
        lambda: "Pausing operations" in old.log_path.read_text(), timeout=30, what="the old replica to yield"
    )
    old.stop()
    assert old.process is not None and old.process.returncode == 0, (
        "the old replica did not exit cleanly on SIGTERM"
    )
    loader.join(timeout=40)
    stop.set()
    assert not errors, errors
    assert new.process is not None and new.process.poll() is None
    testkit.wait_for(lambda: _done(cluster, names), timeout=120, what=f"all {len(names)} rentals delivered")
    _assert_once_each(gateway, namespace, names)
    latencies = _latencies(cluster, names)
    summary = (
        f"max {max(latencies):.0f}s, median {statistics.median(latencies):.0f}s"
        if latencies
        else "no timestamps"
    )
    print(
        f"\n[ha] rolling update with {len(names)} rentals applied at ~7/s (new replica started after"
        f" {rolled_at}): none lost, none twice; creation to Confirmed {summary}"
    )
    peers = _peers(kubectl, namespace)
    assert len(peers) == 1, f"the old replica should have left the peering: {peers}"
