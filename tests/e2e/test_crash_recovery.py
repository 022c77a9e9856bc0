"""Crashes and downtime: a SIGKILLed operator finishes its work after a restart without charging or
texting twice, and rentals applied while it is down are accepted and completed once it is back."""

from __future__ import annotations

import collections
import time
from typing import Any

from rental_devenv import testkit
from rental_gateway import testing
from rental_operator.reconcilers import rentals


def _all_done(cluster: testkit.Cluster, names: list[str]) -> bool:
    return not _unfinished(cluster, names)


def _unfinished(cluster: testkit.Cluster, names: list[str]) -> dict[str, tuple[Any, ...]]:
    """Rentals not yet delivered and fully texted, with what they show (for the failure message)."""
    statuses = {r["metadata"]["name"]: r.get("status", {}) for r in cluster.items("rentals")}
    shown = {
        n: (
            statuses.get(n, {}).get("phase"),
            statuses.get(n, {}).get("delivery", {}).get("phase"),
            statuses.get(n, {}).get("notifiedSeq"),
            [e.get("seq") for e in statuses.get(n, {}).get("history", [])],
        )
        for n in names
    }
    return {n: s for n, s in shown.items() if s[:3] != ("Confirmed", "Delivered", 5)}


def _wait_all_done(cluster: testkit.Cluster, names: list[str], timeout: float) -> None:
    try:
        testkit.wait_for(lambda: _all_done(cluster, names), timeout=timeout, what="all rentals done")
    except TimeoutError:
        raise AssertionError(f"not finished after {timeout:.0f}s: {_unfinished(cluster, names)}") from None


def _assert_once_each(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, namespace: str, names: list[str]
) -> None:
    # Calendar months: within the test only period 1 is due, so one charge of one month's fee each.
    ledger = gateway.ledger()
    charges = collections.Counter(p["reference"] for p in ledger["payments"])
    assert charges == {f"{namespace}/{n}": 1 for n in names}, "a rental was charged twice or not at all"
    assert all(p["status"] == "approved" and p["amount"] == 30_000 for p in ledger["payments"])
    payments = {p["metadata"]["name"]: p["spec"]["period"] for p in cluster.items("payments")}
    assert payments == {rentals.payment_name(n, 1): 1 for n in names}
    shipments = collections.Counter(s["reference"] for s in ledger["shipments"])
    assert shipments == {f"{namespace}/{n}": 1 for n in names}
    texts = collections.Counter(m["reference"] for m in ledger["messages"])
    assert set(texts.values()) == {1}, "a transition was texted twice"
    per_rental = collections.Counter(reference.split("/")[1] for reference in texts)
    assert per_rental == {n: 5 for n in names}


def test_sigkill_in_the_middle_of_twenty_rentals(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator = operator_factory(gateway)
    cluster.create(testkit.purifier("aqua", stock=30))
    names = [f"k{i:02d}" for i in range(20)]
    for name in names:
        cluster.create(testkit.rental(name, "aqua", customer=f"c-{name}"))
    # Kill while work is in flight: some rentals confirmed, others half-way.
    testkit.wait_for(
        lambda: sum(p == "Confirmed" for p in cluster.phases().values()) >= 3,
        timeout=30,
        what="some progress",
    )
    operator.kill()
    mid = cluster.phases()
    assert not all(p == "Confirmed" for p in mid.values()), "the kill came too late to test anything"
    time.sleep(1)
    operator.start()
    _wait_all_done(cluster, names, timeout=120)
    _assert_once_each(cluster, gateway, cluster.namespace, names)
    purifier = cluster.get("purifiers", "aqua")
    assert purifier is not None
    assert cluster.holders("aqua") == sorted(names)
    assert purifier["status"]["allocated"] == len(names)
    assert purifier["status"]["available"] == 10


def test_rentals_applied_while_the_operator_is_down_complete_when_it_returns(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator = operator_factory(gateway, launch=False)
    cluster.create(testkit.purifier("aqua", stock=5))
    names = [f"night-{i}" for i in range(5)]
    for name in names:
        cluster.create(testkit.rental(name, "aqua", customer=f"c-{name}"))
    # The API server accepted them; nobody has processed them yet.
    assert set(cluster.phases().values()) == {None}
    assert gateway.ledger()["payments"] == []

    operator.start()
    _wait_all_done(cluster, names, timeout=90)
    _assert_once_each(cluster, gateway, cluster.namespace, names)
