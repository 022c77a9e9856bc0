"""The monthly contract end to end: the real operator, API server and gateway, with billing periods of a
few seconds (`RENTAL_BILLING_PERIOD`) so a whole term, its dunning and its endings fit in a test.

What is counted is what left the operator: the gateway's ledger (one approved charge per period, none
twice, refunds, the fee) and its text messages, the Payments kept per rental, and the Purifier's stock.
"""

from __future__ import annotations

import time
from typing import Any

from rental_devenv import testkit
from rental_gateway import testing

FEE = 30_000
PHONE = "+821012345678"


def _purifier(name: str, *, stock: int = 2, mandatory: int = 0, percent: int = 10) -> dict[str, Any]:
    return {
        "kind": "Purifier",
        "metadata": {"name": name},
        "spec": {
            "model": f"Model {name}",
            "monthlyFee": FEE,
            "stock": stock,
            "mandatoryMonths": mandatory,
            "earlyTerminationPercent": percent,
        },
    }


def _rental(name: str, purifier: str, *, customer: str, months: int) -> dict[str, Any]:
    return {
        "kind": "Rental",
        "metadata": {"name": name},
        "spec": {
            "purifier": purifier,
            "months": months,
            # English texts, which the assertions read (the Korean ones: the notifications' unit tests).
            "customer": {
                "id": customer,
                "name": "김민준",
                "phone": PHONE,
                "address": "서울 강남구 테헤란로 12",
                "language": "en",
            },
        },
    }


def _status(cluster: testkit.Cluster, name: str) -> dict[str, Any]:
    return dict((cluster.get("rentals", name) or {}).get("status") or {})


def _charges(gateway: testing.GatewayProcess, cluster: testkit.Cluster, name: str) -> list[dict[str, Any]]:
    reference = f"{cluster.namespace}/{name}"
    return [p for p in gateway.ledger()["payments"] if p["reference"] == reference]


def _texts(gateway: testing.GatewayProcess, cluster: testkit.Cluster, name: str) -> list[str]:
    prefix = f"{cluster.namespace}/{name}/"
    return [m["text"] for m in gateway.ledger()["messages"] if m["reference"].startswith(prefix)]


def _periods(cluster: testkit.Cluster, name: str) -> dict[int | None, str | None]:
    """The rental's Payments kept, by period (None: the fee), with their phase."""
    owned = [p for p in cluster.items("payments") if p["spec"]["rental"] == name]
    return {p["spec"].get("period"): (p.get("status") or {}).get("phase") for p in owned}


def test_a_paid_up_term_is_billed_once_a_month_and_the_unit_becomes_the_customers(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator_factory(
        gateway, billing_period="4s", withdrawal_period="1s", payment_history="1", dunning_schedule="none"
    )
    cluster.create(_purifier("aqua", stock=2))
    cluster.create(_rental("kim", "aqua", customer="c-kim", months=3))

    testkit.wait_for(
        lambda: _status(cluster, "kim").get("phase") == "Completed", timeout=60, what="Completed"
    )
    status = _status(cluster, "kim")
    billing = status["billing"]
    assert (billing["periodsPaid"], billing["periodsTotal"], billing["paidAmount"]) == (3, 3, 3 * FEE)
    # One approved charge per month, each for one month's fee: never twice, never collapsed.
    charges = _charges(gateway, cluster, "kim")
    assert [(c["status"], c["amount"]) for c in charges] == [("approved", FEE)] * 3
    # The unit is the customer's: out of the allocation for good, not back in stock.
    purifier = cluster.get("purifiers", "aqua")
    assert purifier is not None
    assert (purifier["status"]["allocated"], purifier["status"]["transferred"]) == (0, 1)
    assert purifier["status"]["available"] == 1
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["StockReserved"] == ("False", "Transferred")
    assert cluster.phase("deliveries", "kim") == "Delivered"  # nothing is collected
    # Receipts for months 2 and 3, the term's end told ahead, and the completion.
    billing_entries = [e["phase"] for e in status["history"] if e["kind"] == "Billing"]
    assert billing_entries == ["Charged", "Charged", "TermEnding"]
    testkit.wait_for(
        lambda: any("now yours" in text for text in _texts(gateway, cluster, "kim")), timeout=20, what="text"
    )
    texts = _texts(gateway, cluster, "kim")
    assert sum("for month" in text for text in texts) == 2  # the receipts
    # Settled charges beyond RENTAL_PAYMENT_HISTORY=1 were deleted once billing recorded them.
    assert len(_periods(cluster, "kim")) <= 2


def test_a_declined_month_is_past_due_then_paid_on_a_retry(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator_factory(gateway, billing_period="5s", dunning_schedule="2s,30s,60s")
    cluster.create(_purifier("aqua"))
    cluster.create(_rental("lee", "aqua", customer="c-lee", months=12))
    testkit.wait_for(
        lambda: _status(cluster, "lee").get("phase") == "Confirmed", timeout=30, what="Confirmed"
    )
    gateway.set_declines("c-lee")  # the card runs dry before month 2

    testkit.wait_for(lambda: _status(cluster, "lee").get("phase") == "PastDue", timeout=30, what="PastDue")
    past_due = _status(cluster, "lee")["billing"]["pastDue"]
    assert (past_due["period"], past_due["attempts"]) == (2, 1)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in _status(cluster, "lee")["conditions"]}
    assert conditions["Paid"] == ("False", "ChargeDeclined")
    gateway.set_declines()  # topped up: the next attempt goes through

    testkit.wait_for(
        lambda: (_status(cluster, "lee").get("billing") or {}).get("periodsPaid", 0) >= 2,
        timeout=30,
        what="paid",
    )
    status = _status(cluster, "lee")
    assert status["billing"].get("pastDue") is None
    assert status["phase"] == "Confirmed"
    month_2 = [c for c in _charges(gateway, cluster, "lee") if c["amount"] == FEE][1:3]
    assert [c["status"] for c in month_2] == ["declined", "approved"]
    texts = _texts(gateway, cluster, "lee")
    assert sum("was declined" in text for text in texts) == 1
    gateway.set_declines("c-lee")  # stop billing before the test ends: cancel
    cluster.patch("rentals", "lee", {"spec": {"cancelled": True}})
    testkit.wait_for(
        lambda: _status(cluster, "lee").get("phase") == "Cancelled", timeout=30, what="Cancelled"
    )


def test_an_exhausted_dunning_schedule_ends_the_contract_and_collects_the_unit(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator_factory(gateway, billing_period="4s", dunning_schedule="1s,2s", withdrawal_period="1s")
    cluster.create(_purifier("aqua", stock=1))
    cluster.create(_rental("park", "aqua", customer="c-park", months=12))
    testkit.wait_for(lambda: cluster.phase("deliveries", "park") == "Delivered", timeout=30, what="delivered")
    gateway.set_declines("c-park")

    testkit.wait_for(
        lambda: _status(cluster, "park").get("phase") == "Cancelled", timeout=60, what="Cancelled"
    )
    status = _status(cluster, "park")
    assert status["billing"]["ending"] == "NonPayment"
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["Paid"] == ("False", "NonPayment")
    assert cluster.phase("deliveries", "park") == "Returned"
    # Month 1 stays paid (nothing refunded); month 2 was tried three times (the charge and two retries).
    statuses = [c["status"] for c in _charges(gateway, cluster, "park")]
    assert statuses == ["approved", "declined", "declined", "declined"]
    purifier = cluster.get("purifiers", "aqua")
    assert purifier is not None and purifier["status"]["available"] == 1


def test_cancelling_after_the_withdrawal_period_charges_the_fee_once_and_refunds_nothing(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator_factory(gateway, billing_period="1h", withdrawal_period="1s")
    cluster.create(_purifier("aqua", mandatory=12, percent=10))
    cluster.create(_rental("choi", "aqua", customer="c-choi", months=24))
    testkit.wait_for(lambda: cluster.phase("deliveries", "choi") == "Delivered", timeout=30, what="delivered")
    time.sleep(1.5)  # past the withdrawal period
    cluster.patch("rentals", "choi", {"spec": {"cancelled": True}})

    testkit.wait_for(
        lambda: _status(cluster, "choi").get("phase") == "Cancelled", timeout=60, what="Cancelled"
    )
    status = _status(cluster, "choi")
    fee = FEE * (12 - 1) * 10 // 100
    assert status["billing"]["ending"] == "Termination"
    assert status["billing"]["feeAmount"] == fee
    charges = _charges(gateway, cluster, "choi")
    assert [(c["status"], c["amount"]) for c in charges] == [("approved", FEE), ("approved", fee)]
    assert cluster.phase("deliveries", "choi") == "Returned"
    assert _periods(cluster, "choi") == {1: "Approved", None: "Approved"}
    assert any("early-termination fee" in text for text in _texts(gateway, cluster, "choi"))


def test_cancelling_within_the_withdrawal_period_refunds_every_charge(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator_factory(gateway, billing_period="3s", withdrawal_period="1h")
    cluster.create(_purifier("aqua", mandatory=12))
    cluster.create(_rental("jung", "aqua", customer="c-jung", months=12))
    testkit.wait_for(
        lambda: (_status(cluster, "jung").get("billing") or {}).get("periodsPaid", 0) >= 2,
        timeout=30,
        what="2 paid",
    )
    cluster.patch("rentals", "jung", {"spec": {"cancelled": True}})

    testkit.wait_for(
        lambda: _status(cluster, "jung").get("phase") == "Cancelled", timeout=60, what="Cancelled"
    )
    status = _status(cluster, "jung")
    assert status["billing"]["ending"] == "Withdrawal"
    charges = _charges(gateway, cluster, "jung")
    assert charges and all(c["status"] == "refunded" for c in charges)
    assert status["billing"]["refundedAmount"] == sum(c["amount"] for c in charges)
    assert status["billing"].get("feeAmount") is None


def test_months_missed_while_the_operator_was_down_are_billed_in_order_one_each(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator = operator_factory(gateway, billing_period="2s", withdrawal_period="1s")
    cluster.create(_purifier("aqua"))
    cluster.create(_rental("yoon", "aqua", customer="c-yoon", months=6))
    testkit.wait_for(
        lambda: _status(cluster, "yoon").get("phase") == "Confirmed", timeout=30, what="Confirmed"
    )
    operator.stop()
    time.sleep(7)  # three or four due dates pass with nobody billing
    restarted = operator_factory(gateway, billing_period="2s", withdrawal_period="1s")
    assert restarted is not operator

    testkit.wait_for(
        lambda: _status(cluster, "yoon").get("phase") == "Completed", timeout=60, what="Completed"
    )
    charges = _charges(gateway, cluster, "yoon")
    assert [(c["status"], c["amount"]) for c in charges] == [("approved", FEE)] * 6
    history = [
        e for e in _status(cluster, "yoon")["history"] if e["kind"] == "Billing" and e["phase"] == "Charged"
    ]
    assert [e["period"] for e in history] == [2, 3, 4, 5, 6]


def test_a_payment_outage_during_a_monthly_charge_is_not_the_customers_fault(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator_factory(gateway, billing_period="3s", breaker_failure_threshold="2", breaker_reset_seconds="1")
    cluster.create(_purifier("aqua"))
    cluster.create(_rental("han", "aqua", customer="c-han", months=12))
    testkit.wait_for(
        lambda: _status(cluster, "han").get("phase") == "Confirmed", timeout=30, what="Confirmed"
    )
    gateway.set_faults(outage="unavailable", partners=["payments"])
    deadline = time.monotonic() + 7  # two due dates during the outage
    while time.monotonic() < deadline:
        assert _status(cluster, "han").get("phase") == "Confirmed", "a fault made the rental past due"
        time.sleep(0.5)
    assert not any("declined" in text for text in _texts(gateway, cluster, "han"))
    gateway.set_faults(outage="off")

    testkit.wait_for(
        lambda: (_status(cluster, "han").get("billing") or {}).get("periodsPaid", 0) >= 3,
        timeout=30,
        what="caught up",
    )
    approved = [c for c in _charges(gateway, cluster, "han") if c["status"] == "approved"]
    paid = _status(cluster, "han")["billing"]["periodsPaid"]
    assert len(approved) == paid  # each month once, none twice
    cluster.patch("rentals", "han", {"spec": {"cancelled": True}})
    testkit.wait_for(
        lambda: _status(cluster, "han").get("phase") == "Cancelled", timeout=30, what="Cancelled"
    )
