"""Cancelling and deleting rentals: one refund each, shipment stopped or returned, stock restored."""

from __future__ import annotations

from typing import Any

import pytest

from rental_devenv import testkit
from rental_gateway import testing
from rental_operator.reconcilers import rentals


def _available(cluster: testkit.Cluster) -> int | None:
    value = (cluster.get("purifiers", "aqua") or {}).get("status", {}).get("available")
    return int(value) if value is not None else None


def _refunds(gateway: testing.GatewayProcess, namespace: str, name: str) -> list[str]:
    return [p["status"] for p in gateway.ledger()["payments"] if p["reference"] == f"{namespace}/{name}"]


def _everything_refunded(rental: dict[str, Any]) -> None:
    """The contract's account: the month charged at application given back in full, no fee."""
    billing = rental["status"]["billing"]
    assert billing["paidAmount"] == billing["refundedAmount"] == 30_000, billing
    assert billing.get("feeAmount") is None, billing


def test_cancel_before_delivery_cancels_the_shipment(
    cluster: testkit.Cluster, gateway_factory: Any, operator_factory: Any
) -> None:
    gateway = gateway_factory("--auto-deliver-seconds", "0")  # shipments stay on their way
    operator_factory(gateway)
    cluster.create(testkit.purifier("aqua", stock=2))
    cluster.create(testkit.rental("kim", "aqua"))
    testkit.wait_for(
        lambda: (cluster.get("deliveries", "kim") or {}).get("status", {}).get("phase") == "Shipping",
        timeout=30,
        what="shipping",
    )
    assert _available(cluster) == 1
    cluster.patch("rentals", "kim", {"spec": {"cancelled": True}})
    testkit.wait_for(lambda: cluster.phase("rentals", "kim") == "Cancelled", timeout=30, what="Cancelled")

    assert _refunds(gateway, cluster.namespace, "kim") == ["refunded"]
    assert [s["status"] for s in gateway.ledger()["shipments"]] == ["cancelled"]
    assert cluster.phase("deliveries", "kim") == "Cancelled"
    assert cluster.phase("payments", rentals.payment_name("kim", 1)) == "Refunded"
    assert _available(cluster) == 2
    rental = cluster.get("rentals", "kim")
    assert rental is not None
    phases = [e["phase"] for e in rental["status"]["history"] if e["kind"] == "Rental"]
    assert phases[-2:] == ["Cancelling", "Cancelled"]
    _everything_refunded(rental)


def test_cancel_after_delivery_returns_the_unit(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator_factory(gateway)
    cluster.create(testkit.purifier("aqua", stock=2))
    cluster.create(testkit.rental("lee", "aqua"))
    testkit.wait_for(lambda: cluster.phase("deliveries", "lee") == "Delivered", timeout=30, what="delivered")
    cluster.patch("rentals", "lee", {"spec": {"cancelled": True}})
    testkit.wait_for(lambda: cluster.phase("rentals", "lee") == "Cancelled", timeout=30, what="Cancelled")

    assert cluster.phase("deliveries", "lee") == "Returned"
    assert [s["status"] for s in gateway.ledger()["shipments"]] == ["returned"]
    assert _refunds(gateway, cluster.namespace, "lee") == ["refunded"]
    assert _available(cluster) == 2
    rental = cluster.get("rentals", "lee")
    assert rental is not None
    delivery_phases = [e["phase"] for e in rental["status"]["history"] if e["kind"] == "Delivery"]
    assert delivery_phases == ["Shipping", "Delivered", "Returning", "Returned"]
    _everything_refunded(rental)  # delivered moments ago: well inside the withdrawal window


def test_cancelled_cannot_be_undone(cluster: testkit.Cluster) -> None:
    cluster.create(testkit.purifier("aqua", stock=1))
    cluster.create({**testkit.rental("once", "aqua")})
    cluster.patch("rentals", "once", {"spec": {"cancelled": True}})
    with pytest.raises(Exception, match=r"spec.cancelled"):
        cluster.patch("rentals", "once", {"spec": {"cancelled": False}})


def test_deleting_a_confirmed_rental_compensates_first(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator_factory(gateway)
    cluster.create(testkit.purifier("aqua", stock=1))
    cluster.create(testkit.rental("park", "aqua"))
    testkit.wait_for(lambda: cluster.phase("deliveries", "park") == "Delivered", timeout=30, what="delivered")
    rental = cluster.get("rentals", "park")
    assert rental is not None and "rental.purifier.io/compensation" in rental["metadata"]["finalizers"]

    cluster.delete("rentals", "park")
    testkit.wait_for(lambda: cluster.get("rentals", "park") is None, timeout=60, what="the rental gone")
    assert _refunds(gateway, cluster.namespace, "park") == ["refunded"]
    assert cluster.phase("payments", rentals.payment_name("park", 1)) in ("Refunded", None)  # None: collected
    assert [s["status"] for s in gateway.ledger()["shipments"]] == ["returned"]
    assert _available(cluster) == 1
    # No orphans: the owned Payment and Delivery are garbage-collected with their Rental.
    testkit.wait_for(
        lambda: cluster.items("payments") == [] and cluster.get("deliveries", "park") is None,
        timeout=60,
        what="the Payment and Delivery garbage-collected",
    )
