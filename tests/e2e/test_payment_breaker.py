"""Pay later: the circuit breaker stops calls to a failing payment system, and deferred rentals are
charged exactly once when it recovers; a deferral that outlives its limit is rejected and released."""

from __future__ import annotations

import time
from typing import Any

from rental_devenv import testkit
from rental_gateway import testing
from rental_operator.reconcilers import rentals


def _payment_calls(gateway: testing.GatewayProcess) -> int:
    route = gateway.stats()["routes"].get("POST /v1/payments", {})
    return sum(route.values())


def test_breaker_opens_defers_and_recovers_charging_once(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator_factory(
        gateway, breaker_failure_threshold="3", breaker_reset_seconds="3", payment_retry_seconds="1"
    )
    cluster.create(testkit.purifier("aqua", stock=20))
    gateway.set_faults(outage="unavailable", partners=["payments"])

    first = [f"early-{i}" for i in range(4)]
    for name in first:
        cluster.create(testkit.rental(name, "aqua"))
    testkit.wait_for(
        lambda: all(cluster.phase("rentals", n) == "PaymentDeferred" for n in first),
        timeout=30,
        what="the first rentals deferred",
    )
    # The threshold is 3: after three failed calls the breaker is open and calls stop.
    calls_when_open = _payment_calls(gateway)
    assert calls_when_open >= 3

    later = [f"late-{i}" for i in range(4)]
    for name in later:
        cluster.create(testkit.rental(name, "aqua"))
    testkit.wait_for(
        lambda: all(cluster.phase("rentals", n) == "PaymentDeferred" for n in later),
        timeout=30,
        what="the later rentals deferred",
    )
    # While open, no new rental reaches the payment system (a half-open trial may, one at a time).
    assert _payment_calls(gateway) <= calls_when_open + 2
    for name in later:
        payment = cluster.get("payments", rentals.payment_name(name, 1))
        assert payment is not None and payment["status"]["phase"] == "Deferred"
        rental = cluster.get("rentals", name)
        assert rental is not None and rental["status"]["deferredUntil"]
        assert {"Paid": "PaymentDeferred"}.items() <= {
            c["type"]: c["reason"] for c in rental["status"]["conditions"]
        }.items()

    gateway.set_faults(outage="off")
    everyone = first + later
    testkit.wait_for(
        lambda: all(cluster.phase("rentals", n) == "Confirmed" for n in everyone),
        timeout=60,
        what="every deferred rental Confirmed after recovery",
    )
    payments = gateway.ledger()["payments"]
    charged = sorted(p["reference"].split("/")[1] for p in payments if p["status"] == "approved")
    assert charged == sorted(everyone)  # each exactly once: period 1, one month's fee
    assert {p["amount"] for p in payments} == {30_000}
    assert sorted(p["metadata"]["name"] for p in cluster.items("payments")) == sorted(
        rentals.payment_name(n, 1) for n in everyone
    )


def test_an_expired_deferral_is_rejected_and_releases_the_unit(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: Any
) -> None:
    operator_factory(
        gateway, deferral_timeout_seconds="3", breaker_failure_threshold="1", breaker_reset_seconds="2"
    )
    cluster.create(testkit.purifier("aqua", stock=1))
    gateway.set_faults(outage="unavailable", partners=["payments"])
    cluster.create(testkit.rental("waits", "aqua"))
    testkit.wait_for(
        lambda: cluster.phase("rentals", "waits") == "PaymentDeferred", timeout=30, what="deferred"
    )
    testkit.wait_for(
        lambda: cluster.phase("rentals", "waits") == "Rejected", timeout=30, what="deferral expiry"
    )

    rental = cluster.get("rentals", "waits")
    assert rental is not None
    assert {c["type"]: c["reason"] for c in rental["status"]["conditions"]}["Paid"] == "DeferralExpired"
    testkit.wait_for(
        lambda: (cluster.get("purifiers", "aqua") or {}).get("status", {}).get("available") == 1,
        timeout=10,
        what="the unit released",
    )
    # The payment system comes back. A 503 does not say whether the charge was taken, so the operator
    # asks again under the same idempotency key and refunds what it learns was taken: the rejected
    # rental nets to zero either way.
    gateway.set_faults(outage="off")
    testkit.wait_for(
        lambda: cluster.phase("payments", rentals.payment_name("waits", 1)) == "Refunded",
        timeout=30,
        what="payment settled",
    )
    time.sleep(1)
    payments = gateway.ledger()["payments"]
    assert [p for p in payments if p["status"] == "approved"] == []
