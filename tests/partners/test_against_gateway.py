"""The partner clients against the reference gateway as a real process, grouped by scenario.

Payments (idempotent charges, declines, refunds), the circuit breaker under injected faults (checked
by the gateway's own request counters: an open breaker sends nothing), unknown outcomes (a timeout
whose charge happened anyway, resolved by retrying the same key), shipping's lifecycle, SMS, and the
API key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rental_operator import config
from rental_operator.partners import breakers, errors, payments, shipping, sms, transport

MakeSettings = Callable[..., config.Settings]
CHARGE = {"amount": 240_000, "currency": "KRW", "customer_id": "cust-1", "reference": "demo/rent-1"}


def payment_requests(gateway: Any) -> int:
    """Requests the gateway received on payment endpoints (any outcome, injected 503s included)."""
    return int(gateway.stats()["partners"].get("payments", 0))


class Transitions:
    def __init__(self) -> None:
        self.seen: list[tuple[breakers.BreakerState, breakers.BreakerState]] = []
        self.lock = threading.Lock()

    def __call__(self, old: breakers.BreakerState, new: breakers.BreakerState) -> None:
        with self.lock:
            self.seen.append((old, new))


@pytest.fixture
def transitions() -> Transitions:
    return Transitions()


@pytest.fixture
def observed() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def client(
    make_settings: MakeSettings, transitions: Transitions, observed: list[tuple[str, str]]
) -> Iterator[payments.PaymentClient]:
    settings = make_settings(
        payment_timeout_seconds="0.5", breaker_failure_threshold="3", breaker_reset_seconds="1"
    )
    with payments.PaymentClient(
        settings,
        breaker_listener=transitions,
        observe=lambda operation, outcome, seconds: observed.append((operation, outcome)),
    ) as built:
        yield built


# Payments.


def test_a_replayed_charge_returns_the_first_payment_and_charges_once(
    client: payments.PaymentClient, gateway: Any
) -> None:
    first = client.charge(**CHARGE, idempotency_key="demo/rent-1/charge")
    again = client.charge(**CHARGE, idempotency_key="demo/rent-1/charge")
    assert first.approved
    assert again == first
    ledger = gateway.ledger(reference="demo/rent-1")["payments"]
    assert [payment["id"] for payment in ledger] == [first.id]
    assert ledger[0]["amount"] == 240_000 and ledger[0]["customerId"] == "cust-1"


def test_the_same_key_for_a_different_charge_is_an_idempotency_conflict(
    client: payments.PaymentClient, gateway: Any
) -> None:
    client.charge(**CHARGE, idempotency_key="demo/rent-1/charge")
    with pytest.raises(errors.IdempotencyConflict):
        client.charge(**{**CHARGE, "amount": 1}, idempotency_key="demo/rent-1/charge")
    assert len(gateway.ledger()["payments"]) == 1
    assert client.breaker_state() == "closed"


def test_a_decline_is_a_declined_charge_and_leaves_the_breaker_closed(
    client: payments.PaymentClient, transitions: Transitions, observed: list[tuple[str, str]]
) -> None:
    for attempt in range(5):  # more than the threshold
        charge = client.charge(**{**CHARGE, "customer_id": "decline-7"}, idempotency_key=f"d-{attempt}")
        assert (charge.status, charge.reason) == ("declined", "card_declined")
    assert client.breaker_state() == "closed"
    assert transitions.seen == []
    assert observed == [("charge", "declined")] * 5


def test_a_refund_is_idempotent_and_shows_on_the_payment(
    client: payments.PaymentClient, gateway: Any
) -> None:
    charge = client.charge(**CHARGE, idempotency_key="demo/rent-1/charge")
    key = transport.derive_key("demo/rent-1/charge", "refund")
    refund = client.refund(charge.id, idempotency_key=key)
    assert refund == payments.Refund(id=charge.id, status="refunded")
    assert client.refund(charge.id, idempotency_key=key) == refund  # replayed
    assert client.refund(charge.id, idempotency_key="another-key") == refund  # already refunded: same answer
    assert client.get(charge.id).status == "refunded"
    (payment,) = gateway.ledger()["payments"]
    assert payment["status"] == "refunded"


def test_refunds_that_cannot_be_made_are_rejections_not_faults(client: payments.PaymentClient) -> None:
    declined = client.charge(**{**CHARGE, "customer_id": "decline-1"}, idempotency_key="d-1")
    with pytest.raises(errors.StateConflict):
        client.refund(declined.id, idempotency_key="d-1/refund")
    with pytest.raises(errors.PartnerRejected) as missing:
        client.refund("pay_does_not_exist", idempotency_key="x/refund")
    assert missing.value.status_code == 404
    assert client.breaker_state() == "closed"


def test_a_charge_the_contract_forbids_is_rejected_with_the_gateways_reason(
    client: payments.PaymentClient,
) -> None:
    with pytest.raises(errors.PartnerRejected) as caught:
        client.charge(**{**CHARGE, "customer_id": " "}, idempotency_key="k")
    assert caught.value.status_code == 400
    assert "customerId" in caught.value.error


# The circuit breaker under injected faults.


def test_faults_open_the_breaker_which_then_sends_nothing_until_a_trial_closes_it(
    client: payments.PaymentClient,
    gateway: Any,
    transitions: Transitions,
    observed: list[tuple[str, str]],
) -> None:
    gateway.set_faults(errorRate=1.0, partners=["payments"])
    for attempt in range(3):
        with pytest.raises(errors.PartnerUnavailable) as caught:
            client.charge(**CHARGE, idempotency_key=f"k-{attempt}")
        assert (caught.value.status_code, caught.value.outcome_unknown) == (503, True)
        assert not isinstance(caught.value, errors.BreakerOpen)
    assert client.breaker_state() == "open"
    assert payment_requests(gateway) == 3

    charge_key = "demo/rent-1/charge"
    for call in (
        lambda: client.charge(**CHARGE, idempotency_key=charge_key),
        lambda: client.refund("pay_x", idempotency_key="pay_x/refund"),
        lambda: client.get("pay_x"),
    ):
        with pytest.raises(errors.BreakerOpen) as refused:
            call()
        assert 0 < refused.value.retry_after <= 1
    assert payment_requests(gateway) == 3  # not one request reached the gateway while open
    assert gateway.ledger()["payments"] == []

    gateway.set_faults(errorRate=0.0)
    time.sleep(1.1)
    assert client.breaker_state() == "half-open"  # a caller checking first is invited to try
    assert payment_requests(gateway) == 3
    charge = client.charge(**CHARGE, idempotency_key=charge_key)  # the half-open trial
    assert charge.approved
    assert client.breaker_state() == "closed"
    assert payment_requests(gateway) == 4
    assert transitions.seen == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]
    assert observed == [("charge", "server_error")] * 3 + [
        ("charge", "breaker_open"),
        ("refund", "breaker_open"),
        ("get", "breaker_open"),
        ("charge", "approved"),
    ]


def test_a_failed_trial_reopens_the_breaker_after_one_request(
    client: payments.PaymentClient, gateway: Any, transitions: Transitions
) -> None:
    gateway.set_faults(outage="unavailable", partners=["payments"])
    for attempt in range(3):
        with pytest.raises(errors.PartnerUnavailable):
            client.charge(**CHARGE, idempotency_key=f"k-{attempt}")
    time.sleep(1.1)
    with pytest.raises(errors.PartnerUnavailable) as trial:
        client.charge(**CHARGE, idempotency_key="k-trial")
    assert not isinstance(trial.value, errors.BreakerOpen)
    with pytest.raises(errors.BreakerOpen):
        client.charge(**CHARGE, idempotency_key="k-trial")
    assert payment_requests(gateway) == 4
    assert transitions.seen == [("closed", "open"), ("open", "half-open"), ("half-open", "open")]


def test_shipping_and_sms_keep_working_while_payments_are_down(
    client: payments.PaymentClient, gateway: Any, make_settings: MakeSettings
) -> None:
    gateway.set_faults(outage="unavailable", partners=["payments"])
    for attempt in range(3):
        with pytest.raises(errors.PartnerUnavailable):
            client.charge(**CHARGE, idempotency_key=f"k-{attempt}")
    assert client.breaker_state() == "open"
    settings = make_settings()
    with shipping.ShippingClient(settings) as shipper:
        assert shipper.create(reference="r", address="a", item="i", idempotency_key="s").status == "shipping"
    sender = sms.sender_from_settings(settings)
    assert sender.send(to="+821012345678", text="hi", reference="r", idempotency_key="m")


# Unknown outcomes.


def test_a_timed_out_charge_that_happened_is_found_by_retrying_its_key(
    client: payments.PaymentClient, gateway: Any
) -> None:
    gateway.set_faults(latencyMs=1500, partners=["payments"])
    with pytest.raises(errors.PartnerUnavailable) as caught:
        client.charge(**CHARGE, idempotency_key="demo/rent-1/charge")
    assert (caught.value.kind, caught.value.outcome_unknown) == ("timeout", True)
    gateway.set_faults(latencyMs=0)
    deadline = time.monotonic() + 5
    while not gateway.ledger()["payments"] and time.monotonic() < deadline:
        time.sleep(0.1)  # the gateway finishes the slow request after the client gave up
    (made,) = gateway.ledger()["payments"]

    charge = client.charge(**CHARGE, idempotency_key="demo/rent-1/charge")
    assert charge.id == made["id"] and charge.approved
    assert len(gateway.ledger()["payments"]) == 1  # the retry learned the outcome, it did not charge again


def test_a_dropped_connection_is_an_unknown_outcome(client: payments.PaymentClient, gateway: Any) -> None:
    gateway.set_faults(outage="drop", partners=["payments"])
    with pytest.raises(errors.PartnerUnavailable) as caught:
        client.charge(**CHARGE, idempotency_key="k")
    assert (caught.value.kind, caught.value.outcome_unknown) == ("connection", True)


# Shipping.


@pytest.fixture
def shipper(make_settings: MakeSettings) -> Iterator[shipping.ShippingClient]:
    with shipping.ShippingClient(make_settings(), timeout_seconds=2) as built:
        yield built


def test_a_shipment_is_created_once_and_read_back(shipper: shipping.ShippingClient, gateway: Any) -> None:
    created = shipper.create(
        reference="demo/rent-1", address="1 Sejong-daero, Seoul", item="AQ-100", idempotency_key="ship-1"
    )
    assert created.status == "shipping" and created.tracking_number
    again = shipper.create(
        reference="demo/rent-1", address="1 Sejong-daero, Seoul", item="AQ-100", idempotency_key="ship-1"
    )
    assert again == created
    assert shipper.get(created.id) == created
    assert len(gateway.ledger()["shipments"]) == 1


def test_a_shipment_is_cancelled_before_delivery_and_returned_after(
    shipper: shipping.ShippingClient, gateway: Any
) -> None:
    early = shipper.create(reference="r-1", address="a", item="AQ-100", idempotency_key="ship-early")
    assert shipper.cancel(early.id, idempotency_key="ship-early/cancel").status == "cancelled"
    assert shipper.cancel(early.id, idempotency_key="ship-early/cancel").status == "cancelled"

    late = shipper.create(reference="r-2", address="a", item="AQ-100", idempotency_key="ship-late")
    gateway.deliver(late.id)
    assert shipper.get(late.id).status == "delivered"
    with pytest.raises(errors.StateConflict):
        shipper.cancel(late.id, idempotency_key="ship-late/cancel")
    assert shipper.return_(late.id, idempotency_key="ship-late/return").status == "returning"
    gateway.deliver(late.id)
    assert shipper.get(late.id).status == "returned"


def test_returning_a_parcel_not_yet_delivered_is_a_state_conflict(shipper: shipping.ShippingClient) -> None:
    shipment = shipper.create(reference="r", address="a", item="i", idempotency_key="s")
    with pytest.raises(errors.StateConflict):
        shipper.return_(shipment.id, idempotency_key="s/return")


def test_an_unknown_shipment_is_a_404(shipper: shipping.ShippingClient) -> None:
    with pytest.raises(errors.PartnerRejected) as caught:
        shipper.get("shp_missing")
    assert caught.value.status_code == 404


# SMS.


def test_a_message_is_sent_once_per_key(make_settings: MakeSettings, gateway: Any) -> None:
    sender = sms.sender_from_settings(make_settings())
    try:
        text = sms.truncate_for_sms(
            "정수기 렌탈이 확정되었습니다. 배송이 시작되면 다시 알려 드리겠습니다. " * 3
        )
        first = sender.send(to="+821012345678", text=text, reference="demo/rent-1", idempotency_key="sms-1")
        again = sender.send(to="+821012345678", text=text, reference="demo/rent-1", idempotency_key="sms-1")
    finally:
        sender.close()
    assert first and again == first
    (message,) = gateway.ledger()["messages"]
    assert (message["id"], message["text"], message["to"]) == (first, text, "+821012345678")


def test_a_number_the_gateway_cannot_use_is_rejected(make_settings: MakeSettings) -> None:
    sender = sms.sender_from_settings(make_settings())
    with pytest.raises(errors.PartnerRejected) as caught:
        sender.send(to="010-1234-5678", text="hi", reference="r", idempotency_key="k")
    assert caught.value.status_code == 400 and "E.164" in caught.value.error


# Authentication.


def test_a_wrong_key_is_a_401_rejection_that_does_not_trip_the_breaker(make_settings: MakeSettings) -> None:
    settings = make_settings(payment_api_key="not-the-key-7f3a", breaker_failure_threshold="1")
    with payments.PaymentClient(settings) as client:
        for attempt in range(3):
            with pytest.raises(errors.PartnerRejected) as caught:
                client.charge(**CHARGE, idempotency_key=f"k-{attempt}")
            assert caught.value.status_code == 401
            assert "7f3a" not in str(caught.value)
        assert client.breaker_state() == "closed"
