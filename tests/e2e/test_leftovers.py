"""Strangers under a rental's sibling names: a Payment or Delivery the rental did not create is never taken
for its own (issue 13, finding 6).

A Rental's Delivery carries the Rental's name, and its Payments the name with the period
(`<rental>-p1`). A leftover of a deleted Rental of the same name (garbage collection has not removed it
yet) or an object made by hand used to be trusted by that name alone: an approved one confirmed and
shipped a new rental that held no unit and paid nothing. Now the rental reports the stranger (a
condition with a documented reason and a Warning Event), acts on nothing of it, and goes on by itself
once the stranger is gone.
"""

from __future__ import annotations

import uuid
from typing import Any

from rental_devenv import testkit
from rental_gateway import testing
from rental_operator.reconcilers import rentals

FEE = 30_000
MONTHS = 12


def _create(cluster: testkit.Cluster, plural: str, body: dict[str, Any], status: dict[str, Any]) -> None:
    """Create an object as a person (or a leftover) would have, status included."""
    body = {"apiVersion": f"{testkit.GROUP}/{testkit.VERSION}", **body}
    name = body["metadata"]["name"]
    cluster.custom.create_namespaced_custom_object(
        testkit.GROUP, testkit.VERSION, cluster.namespace, plural, body
    )
    cluster.custom.patch_namespaced_custom_object_status(
        testkit.GROUP,
        testkit.VERSION,
        cluster.namespace,
        plural,
        name,
        {"status": status},
        _content_type="application/merge-patch+json",
    )


def _approved_payment(name: str, owners: list[dict[str, Any]]) -> dict[str, Any]:
    """An approved charge for exactly what the rental would charge at application (period 1, one
    month's fee), under the name of the rental's period-1 Payment."""
    return {
        "kind": "Payment",
        "metadata": {"name": rentals.payment_name(name, 1), "ownerReferences": owners},
        "spec": {
            "rental": name,
            "period": 1,
            "amount": FEE,
            "currency": "KRW",
            "customerId": "cust-1",
            "idempotencyKey": f"rental-{uuid.uuid4()}",
        },
    }


def _owner(name: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{testkit.GROUP}/{testkit.VERSION}",
        "kind": "Rental",
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _condition(cluster: testkit.Cluster, name: str, type_: str) -> dict[str, Any]:
    conditions = ((cluster.get("rentals", name) or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), {})


def _charged(gateway: testing.GatewayProcess, namespace: str, name: str) -> list[dict[str, Any]]:
    return [p for p in gateway.ledger()["payments"] if p["reference"] == f"{namespace}/{name}"]


def _stranger_payment_then_own(
    cluster: testkit.Cluster,
    gateway: testing.GatewayProcess,
    operator_factory: Any,
    name: str,
    *,
    owners: list[dict[str, Any]],
    remove: Any,
) -> None:
    """An approved stranger Payment under the rental's Payment name: the rental reports it and acts on
    nothing of it; once `remove()` takes the stranger away, it charges its own and is confirmed."""
    # Made before the operator runs, so it never sees the stranger without its status (and charges it).
    _create(
        cluster,
        "payments",
        _approved_payment(name, owners),
        {"phase": "Approved", "transactionId": "tx-stale"},
    )
    operator_factory(gateway)
    cluster.create(testkit.rental(name, "aqua", months=MONTHS))
    testkit.wait_for(
        lambda: _condition(cluster, name, "Paid").get("reason") == "PaymentMismatch",
        timeout=30,
        what="Paid=False/PaymentMismatch",
    )
    testkit.wait_for(
        lambda: "PaymentMismatch" in cluster.events(name), timeout=15, what="a PaymentMismatch Event"
    )
    rental = cluster.get("rentals", name)
    assert rental is not None
    status = rental["status"]
    assert status.get("phase") != "Confirmed"
    assert _condition(cluster, name, "Paid")["status"] == "False"
    assert _condition(cluster, name, "Ready")["reason"] == "PaymentMismatch"
    assert "is not this rental's" in status["message"]
    assert "payment" not in status  # the stranger's transaction is not mirrored as the rental's
    assert cluster.get("deliveries", name) is None  # nothing shipped on the stranger's approval
    # The unit may already be held for the rental itself: when its first pass runs before the
    # operator's Payment watch has listed the stranger, it reserves, then meets the stranger when it
    # creates its charge. Held for this rental, never for the stranger, and nothing is charged.
    stock = (cluster.get("purifiers", "aqua") or {}).get("status", {})
    reserved_for = [c["uid"] for c in stock.get("pending") or () if c["operation"] == "Reserve"]
    assert stock.get("allocated", 0) == len(reserved_for) and set(reserved_for) <= {rental["metadata"]["uid"]}
    assert _charged(gateway, cluster.namespace, name) == []

    remove()
    testkit.wait_for(lambda: cluster.phase("rentals", name) == "Confirmed", timeout=60, what="Confirmed")
    payment = cluster.get("payments", rentals.payment_name(name, 1))
    assert payment is not None
    uid = rental["metadata"]["uid"]
    assert [o["uid"] for o in payment["metadata"]["ownerReferences"]] == [uid]
    assert payment["spec"]["idempotencyKey"] == f"rental-{uid}-p1"
    assert [p["status"] for p in _charged(gateway, cluster.namespace, name)] == ["approved"]
    assert cluster.holders("aqua") == [name]
    assert _condition(cluster, name, "Paid")["reason"] == "PaymentApproved"


def test_an_approved_payment_made_by_hand_does_not_confirm_a_new_rental(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    cluster.create(testkit.purifier("aqua", stock=1, fee=FEE))
    _stranger_payment_then_own(
        cluster,
        gateway,
        operator_factory,
        "kim",
        owners=[],
        remove=lambda: cluster.delete("payments", rentals.payment_name("kim", 1)),
    )


def test_a_payment_left_by_another_rental_waits_for_garbage_collection(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    """Owned by another Rental's uid: reported until garbage collection removes it with its owner."""
    cluster.create(testkit.purifier("aqua", stock=1, fee=FEE))
    # The owner: a rental rejected on arrival (no such purifier), so it holds nothing and goes at once.
    owner = cluster.create(testkit.rental("owner", "nowhere"))
    _stranger_payment_then_own(
        cluster,
        gateway,
        operator_factory,
        "lee",
        owners=[_owner("owner", owner["metadata"]["uid"])],
        remove=lambda: cluster.delete("rentals", "owner"),
    )


def test_a_delivery_made_by_hand_is_not_taken_for_the_rentals_shipment(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    cluster.create(testkit.purifier("aqua", stock=1, fee=FEE))
    stranger = {
        "kind": "Delivery",
        "metadata": {"name": "park"},
        "spec": {"rental": "park", "purifier": "aqua", "address": "Seoul", "customerId": "cust-1"},
    }
    _create(
        cluster,
        "deliveries",
        stranger,
        {"phase": "Delivered", "shipmentId": "ship-stale", "trackingNumber": "TRK-STALE"},
    )
    operator_factory(gateway)
    cluster.create(testkit.rental("park", "aqua", months=MONTHS))

    testkit.wait_for(
        lambda: _condition(cluster, "park", "DeliveryStarted").get("reason") == "DeliveryMismatch",
        timeout=30,
        what="DeliveryStarted=False/DeliveryMismatch",
    )
    testkit.wait_for(
        lambda: "DeliveryMismatch" in cluster.events("park"), timeout=15, what="a DeliveryMismatch Event"
    )
    rental = cluster.get("rentals", "park")
    assert rental is not None
    assert rental["status"]["phase"] == "Confirmed"  # paid and in force: only the shipment waits
    assert "delivery" not in rental["status"]  # the stranger's tracking number is not the rental's
    assert _condition(cluster, "park", "DeliveryStarted")["status"] == "False"
    assert gateway.ledger()["shipments"] == []
    assert not any(e["kind"] == "Delivery" for e in rental["status"]["history"])

    cluster.delete("deliveries", "park")
    testkit.wait_for(
        lambda: (
            (cluster.get("rentals", "park") or {}).get("status", {}).get("delivery", {}).get("phase")
            == "Delivered"
        ),
        timeout=60,
        what="its own shipment delivered",
    )
    delivery = cluster.get("deliveries", "park")
    assert delivery is not None
    assert [o["uid"] for o in delivery["metadata"]["ownerReferences"]] == [rental["metadata"]["uid"]]
    assert len(gateway.ledger()["shipments"]) == 1
