"""A rental from application to delivery: the whole story with every side effect counted once."""

from __future__ import annotations

import datetime
from typing import Any

from rental_devenv import testkit
from rental_gateway import testing
from rental_operator.reconcilers import rentals


def _resting(cluster: testkit.Cluster, name: str) -> dict[str, Any] | None:
    rental = cluster.get("rentals", name)
    status = (rental or {}).get("status", {})
    delivered = status.get("delivery", {}).get("phase") == "Delivered"
    done = status.get("phase") == "Confirmed" and delivered and status.get("notifiedSeq") == 5
    return rental if done else None


def test_rental_is_paid_confirmed_shipped_and_delivered(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator_factory(gateway)
    cluster.create(testkit.purifier("aqua", stock=3, fee=29_900))
    cluster.create(testkit.rental("kim", "aqua", customer="cust-1", months=12))

    rental = testkit.wait_for(
        lambda: _resting(cluster, "kim"), timeout=60, what="kim Confirmed and Delivered"
    )
    status = rental["status"]

    history = [(entry["kind"], entry["phase"]) for entry in status["history"]]
    assert history == [
        ("Rental", "Pending"),
        ("Rental", "AwaitingPayment"),
        ("Rental", "Confirmed"),
        ("Delivery", "Shipping"),
        ("Delivery", "Delivered"),
    ]
    assert [entry["seq"] for entry in status["history"]] == [1, 2, 3, 4, 5]
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["StockReserved"] == ("True", "Reserved")
    assert conditions["Paid"] == ("True", "PaymentApproved")
    assert conditions["DeliveryStarted"] == ("True", "Delivered")
    assert conditions["Ready"] == ("True", "Confirmed")
    # A monthly contract: the application charges period 1, one month's fee, not the whole term.
    assert status["payment"]["amount"] == 29_900
    assert status["payment"]["phase"] == "Approved"
    assert status["payment"]["period"] == 1
    assert status["payment"]["name"] == rentals.payment_name("kim", 1) == "kim-p1"
    billing = status["billing"]
    assert (billing["monthlyFee"], billing["currency"]) == (29_900, "KRW")
    assert (billing["periodsPaid"], billing["periodsTotal"], billing["paidAmount"]) == (1, 12, 29_900)
    anchor, next_charge = (datetime.datetime.fromisoformat(billing[k]) for k in ("anchor", "nextChargeAt"))
    assert anchor < next_charge  # calendar months by default: period 2 is weeks away
    assert "pastDue" not in billing
    assert status["delivery"]["trackingNumber"]
    assert status["observedGeneration"] == rental["metadata"]["generation"]

    purifier = cluster.get("purifiers", "aqua")
    assert purifier is not None
    assert purifier["status"]["available"] == 2
    assert purifier["status"]["allocated"] == 1
    assert cluster.holders(purifier["metadata"]["name"]) == ["kim"]

    # Payment and Delivery are owned by the rental (cascading deletion).
    for plural, owned_name in (("payments", rentals.payment_name("kim", 1)), ("deliveries", "kim")):
        owned = cluster.get(plural, owned_name)
        assert owned is not None
        (owner,) = owned["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["controller"]) == ("Rental", "kim", True)
    # The only Payment is period 1's, under the key of the rental's uid and the period.
    assert [p["metadata"]["name"] for p in cluster.items("payments")] == ["kim-p1"]
    payment = cluster.get("payments", "kim-p1")
    assert payment is not None and payment["status"]["transactionId"] == status["payment"]["transactionId"]
    assert payment["spec"]["period"] == 1 and payment["spec"]["amount"] == 29_900
    assert payment["spec"]["idempotencyKey"] == f"rental-{rental['metadata']['uid']}-p1"

    ledger = gateway.ledger()
    charges = [p for p in ledger["payments"] if p["reference"] == f"{cluster.namespace}/kim"]
    assert len(charges) == 1 and charges[0]["status"] == "approved" and charges[0]["amount"] == 29_900
    assert len(ledger["shipments"]) == 1
    # One text message per transition, to the customer's phone, none twice.
    messages = [m for m in ledger["messages"] if m["reference"].startswith(f"{cluster.namespace}/kim/")]
    assert sorted(m["reference"].rsplit("/", 1)[1] for m in messages) == ["1", "2", "3", "4", "5"]
    assert {m["to"] for m in messages} == {"+821012345678"}
    tracking = status["delivery"]["trackingNumber"]
    assert any(tracking in m["text"] for m in messages)

    reasons = testkit.wait_for(
        lambda: (r := cluster.events("kim")) and "Confirmed" in r and r, timeout=10, what="Events on kim"
    )
    assert {"AwaitingPayment", "PaymentRequested", "Confirmed", "DeliveryRequested"} <= set(reasons)


def test_a_rental_for_an_unknown_purifier_is_rejected(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator_factory(gateway)
    cluster.create(testkit.rental("lee", "no-such-purifier"))
    testkit.wait_for(lambda: cluster.phase("rentals", "lee") == "Rejected", timeout=30, what="lee Rejected")
    rental = cluster.get("rentals", "lee")
    assert rental is not None
    conditions = {c["type"]: c["reason"] for c in rental["status"]["conditions"]}
    assert conditions["StockReserved"] == "PurifierNotFound"
    assert gateway.ledger()["payments"] == []
    assert cluster.items("payments") == []


def test_a_declined_payment_rejects_the_rental_and_releases_the_unit(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator_factory(gateway)
    cluster.create(testkit.purifier("aqua", stock=1))
    cluster.create(testkit.rental("park", "aqua", customer="decline-park"))
    testkit.wait_for(lambda: cluster.phase("rentals", "park") == "Rejected", timeout=30, what="park Rejected")
    rental = cluster.get("rentals", "park")
    assert rental is not None
    conditions = {c["type"]: c["reason"] for c in rental["status"]["conditions"]}
    assert conditions["Paid"] == "PaymentDeclined"
    testkit.wait_for(
        lambda: (cluster.get("purifiers", "aqua") or {}).get("status", {}).get("available") == 1,
        timeout=10,
        what="the unit back in stock",
    )
    assert [p["status"] for p in gateway.ledger()["payments"]] == ["declined"]
    assert cluster.get("deliveries", "park") is None


def test_a_rental_with_a_long_name_is_charged_and_shipped(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    """A Rental's name may be a DNS subdomain of up to 253 characters; a label value only 63. The
    `rental.purifier.io/rental` label on its Payment and Delivery must not stop either being created."""
    operator_factory(gateway)
    cluster.create(testkit.purifier("aqua", stock=1))
    name = "kim-minjun." + "aquapure-300-countertop." * 5 + "seoul"  # 136 characters
    cluster.create(testkit.rental(name, "aqua"))
    testkit.wait_for(lambda: cluster.phase("deliveries", name) == "Delivered", timeout=60, what="delivered")
    assert cluster.phase("rentals", name) == "Confirmed"
    [payment] = cluster.items("payments")
    label = payment["metadata"]["labels"]["rental.purifier.io/rental"]
    assert len(label) <= 63 and label.startswith("kim-minjun.aquapure")
    assert (cluster.get("deliveries", name) or {})["metadata"]["labels"]["rental.purifier.io/rental"] == label
