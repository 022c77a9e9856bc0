"""payments: the contract's requests and answers, the breaker around them, and the metrics hooks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rental_operator.partners import errors, payments

APPROVED = {"id": "pay_1", "status": "approved", "amount": 120000, "currency": "KRW"}
DECLINED = {
    "id": "pay_2",
    "status": "declined",
    "amount": 120000,
    "currency": "KRW",
    "reason": "card_declined",
}
CHARGE = {"amount": 120000, "currency": "KRW", "customer_id": "cust-1", "reference": "ns/rent-1"}


class Recorder:
    def __init__(self) -> None:
        self.observed: list[tuple[str, str]] = []
        self.changes: list[tuple[str, str]] = []

    def observe(self, operation: str, outcome: str, seconds: float) -> None:
        assert seconds >= 0
        self.observed.append((operation, outcome))

    def change(self, old: str, new: str) -> None:
        self.changes.append((old, new))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(partner: Any, make_settings: Any, recorder: Recorder) -> Iterator[payments.PaymentClient]:
    settings = make_settings(
        partner.url,
        payment_api_key="pk-1",
        payment_timeout_seconds="0.3",
        breaker_failure_threshold="3",
        breaker_reset_seconds="0.3",
    )
    with payments.PaymentClient(
        settings, breaker_listener=recorder.change, observe=recorder.observe
    ) as built:
        yield built


def test_a_charge_posts_the_contracts_body_and_returns_the_approval(
    client: payments.PaymentClient, partner: Any, recorder: Recorder
) -> None:
    partner.default = partner.Reply(201, APPROVED)
    charge = client.charge(**CHARGE, idempotency_key="ns/rent-1/charge")
    assert charge == payments.Charge(id="pay_1", status="approved", amount=120000, currency="KRW")
    assert charge.approved
    (request,) = partner.received
    assert (request.method, request.path) == ("POST", "/v1/payments")
    assert request.json() == {
        "amount": 120000,
        "currency": "KRW",
        "customerId": "cust-1",
        "reference": "ns/rent-1",
    }
    assert request.headers["idempotency-key"] == "ns/rent-1/charge"
    assert request.headers["authorization"] == "Bearer pk-1"
    assert recorder.observed == [("charge", "approved")]


def test_a_decline_is_an_answer_not_an_error_and_never_trips_the_breaker(
    client: payments.PaymentClient, partner: Any, recorder: Recorder
) -> None:
    partner.default = partner.Reply(201, DECLINED)
    for attempt in range(10):
        charge = client.charge(**CHARGE, idempotency_key=f"k-{attempt}")
        assert (charge.status, charge.reason, charge.approved) == ("declined", "card_declined", False)
    assert client.breaker_state() == "closed"
    assert recorder.observed == [("charge", "declined")] * 10
    assert recorder.changes == []


def test_4xx_answers_never_trip_the_breaker(client: payments.PaymentClient, partner: Any) -> None:
    partner.default = partner.Reply(400, {"error": "currency must be ..."})
    for attempt in range(10):
        with pytest.raises(errors.PartnerRejected):
            client.charge(**CHARGE, idempotency_key=f"k-{attempt}")
    assert client.breaker_state() == "closed"


def test_an_answer_for_another_amount_is_a_protocol_error(
    client: payments.PaymentClient, partner: Any
) -> None:
    partner.default = partner.Reply(201, {**APPROVED, "amount": 1})
    with pytest.raises(errors.PartnerProtocolError, match="120000 KRW with 1 KRW"):
        client.charge(**CHARGE, idempotency_key="k")


@pytest.mark.parametrize(
    "body",
    [
        {**APPROVED, "status": "pending"},
        {k: v for k, v in APPROVED.items() if k != "id"},
        {**APPROVED, "id": ""},
        {**APPROVED, "amount": "120000"},
    ],
)
def test_a_charge_answer_off_contract_is_a_protocol_error(
    client: payments.PaymentClient, partner: Any, recorder: Recorder, body: dict[str, object]
) -> None:
    partner.default = partner.Reply(201, body)
    with pytest.raises(errors.PartnerProtocolError):
        client.charge(**CHARGE, idempotency_key="k")
    assert recorder.observed == [("charge", "protocol_error")]
    assert client.breaker_state() == "closed"


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 0},
        {"amount": -5},
        {"amount": True},
        {"amount": 1.5},
        {"currency": "krw"},
        {"currency": "KRWX"},
        {"customer_id": ""},
        {"reference": ""},
    ],
)
def test_bad_arguments_are_refused_before_any_request(
    client: payments.PaymentClient, partner: Any, change: dict[str, object]
) -> None:
    with pytest.raises(ValueError):
        client.charge(**{**CHARGE, **change}, idempotency_key="k")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        client.charge(**CHARGE, idempotency_key="")
    assert partner.received == []


def test_faults_open_the_breaker_then_calls_fail_fast_without_requests(
    client: payments.PaymentClient, partner: Any, recorder: Recorder
) -> None:
    partner.default = partner.Reply(503, {"error": "down"})
    for attempt in range(3):
        with pytest.raises(errors.PartnerUnavailable) as caught:
            client.charge(**CHARGE, idempotency_key=f"k-{attempt}")
        assert caught.value.outcome_unknown
        assert not isinstance(caught.value, errors.BreakerOpen)
    assert client.breaker_state() == "open"
    sent = len(partner.received)

    for call in (
        lambda: client.charge(**CHARGE, idempotency_key="k-9"),
        lambda: client.refund("pay_1", idempotency_key="k-9/refund"),
        lambda: client.get("pay_1"),
    ):
        with pytest.raises(errors.BreakerOpen) as open_:
            call()
        assert not open_.value.outcome_unknown
    assert len(partner.received) == sent  # nothing reached the partner
    assert recorder.observed[-3:] == [
        ("charge", "breaker_open"),
        ("refund", "breaker_open"),
        ("get", "breaker_open"),
    ]

    partner.default = partner.Reply(201, APPROVED)
    time.sleep(0.35)
    assert client.charge(**CHARGE, idempotency_key="k-9").approved
    assert client.breaker_state() == "closed"
    assert recorder.changes == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]


def test_timeouts_count_as_faults_with_an_unknown_outcome(
    client: payments.PaymentClient, partner: Any, recorder: Recorder
) -> None:
    partner.default = partner.Reply(201, APPROVED, delay=1.0)
    started = time.monotonic()
    for attempt in range(3):
        with pytest.raises(errors.PartnerUnavailable) as caught:
            client.charge(**CHARGE, idempotency_key=f"k-{attempt}")
        assert (caught.value.kind, caught.value.outcome_unknown) == ("timeout", True)
    assert time.monotonic() - started < 2.0  # RENTAL_PAYMENT_TIMEOUT_SECONDS=0.3 applies
    assert client.breaker_state() == "open"
    assert recorder.observed == [("charge", "timeout")] * 3


def test_a_refused_connection_is_a_fault_with_no_effect(
    closed_port_url: str, make_settings: Any, recorder: Recorder
) -> None:
    settings = make_settings(closed_port_url, breaker_failure_threshold="2")
    with payments.PaymentClient(settings, observe=recorder.observe) as client:
        for attempt in range(2):
            with pytest.raises(errors.PartnerUnavailable) as caught:
                client.charge(**CHARGE, idempotency_key=f"k-{attempt}")
            assert (caught.value.kind, caught.value.outcome_unknown) == ("connection", False)
        assert client.breaker_state() == "open"
    assert recorder.observed == [("charge", "connection_error")] * 2


def test_a_refund_posts_an_empty_body_under_its_own_key(
    client: payments.PaymentClient, partner: Any, recorder: Recorder
) -> None:
    partner.default = partner.Reply(200, {"id": "pay_1", "status": "refunded"})
    refund = client.refund("pay_1", idempotency_key="ns/rent-1/charge/refund")
    assert refund == payments.Refund(id="pay_1", status="refunded")
    (request,) = partner.received
    assert (request.method, request.path, request.json()) == ("POST", "/v1/payments/pay_1/refund", {})
    assert request.headers["idempotency-key"] == "ns/rent-1/charge/refund"
    assert recorder.observed == [("refund", "refunded")]


def test_refunding_a_declined_payment_is_a_state_conflict(
    client: payments.PaymentClient, partner: Any
) -> None:
    partner.default = partner.Reply(409, {"error": "a declined payment cannot be refunded"})
    with pytest.raises(errors.StateConflict):
        client.refund("pay_2", idempotency_key="k/refund")
    assert client.breaker_state() == "closed"


def test_get_reads_the_current_status_including_refunded(
    client: payments.PaymentClient, partner: Any
) -> None:
    partner.default = partner.Reply(
        200, {**APPROVED, "status": "refunded", "refundedAt": "2026-01-01T00:00:00Z"}
    )
    record = client.get("pay/1")
    assert (record.id, record.status) == ("pay_1", "refunded")
    assert partner.received[0].path == "/v1/payments/pay%2F1"


def test_a_failing_observe_hook_does_not_break_payments(
    partner: Any, make_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def observe(operation: str, outcome: str, seconds: float) -> None:
        raise RuntimeError("histogram exploded")

    partner.default = partner.Reply(201, APPROVED)
    with payments.PaymentClient(make_settings(partner.url), observe=observe) as client:
        assert client.charge(**CHARGE, idempotency_key="k").approved
    assert "observe hook failed" in caplog.text


def test_concurrent_charges_are_not_serialized_by_the_breaker(
    client: payments.PaymentClient, partner: Any
) -> None:
    # The partner answers only once all 15 requests are in flight at the same time: if the breaker
    # let them through one at a time, the barrier would break and the charges fail.
    together = threading.Barrier(15, timeout=10)

    def answer(_request: Any) -> Any:
        try:
            together.wait()
        except threading.BrokenBarrierError:
            return partner.Reply(500, {"error": "requests were serialized"})
        return partner.Reply(201, APPROVED)

    partner.default = answer
    results: list[str] = []

    def charge(number: int) -> None:
        try:
            results.append(client.charge(**CHARGE, idempotency_key=f"k-{number}").status)
        except errors.PartnerError as error:
            results.append(str(error))

    threads = [threading.Thread(target=charge, args=(number,)) for number in range(15)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == ["approved"] * 15


def test_the_outcome_labels_of_errors() -> None:
    unavailable = errors.PartnerUnavailable("x", partner="payments", kind="timeout", outcome_unknown=True)
    assert payments.outcome_of_error(unavailable) == "timeout"
    assert (
        payments.outcome_of_error(errors.BreakerOpen("x", partner="payments", retry_after=1))
        == "breaker_open"
    )
    conflict = errors.IdempotencyConflict("x", partner="payments", status_code=409, error="")
    assert payments.outcome_of_error(conflict) == "rejected"
    assert payments.outcome_of_error(errors.PartnerError("x", partner="payments")) == "error"
    assert payments.outcome_of_error(KeyError()) == "error"
