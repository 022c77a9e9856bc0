"""reconcilers.payments: which call a Payment needs next, and the status each answer leads to."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from rental_operator.api import payment as api_payment
from rental_operator.reconcilers import payments

NOW = datetime.datetime(2025, 6, 1, 9, 0, tzinfo=datetime.UTC)
LATER = NOW + datetime.timedelta(minutes=5)
EARLIER = NOW - datetime.timedelta(minutes=5)

Call = payments.Call


def _payment(
    phase: str | None = None,
    *,
    attempts: int = 0,
    refund: bool = False,
    transaction: str | None = None,
    last_error: str | None = None,
    approved_at: datetime.datetime | None = None,
    refunded_at: datetime.datetime | None = None,
    conditions: list[dict[str, Any]] | None = None,
    generation: int = 1,
) -> api_payment.Payment:
    status: dict[str, Any] = {"attempts": attempts, "conditions": conditions or []}
    for key, value in (
        ("phase", phase),
        ("transactionId", transaction),
        ("lastError", last_error),
        ("approvedAt", approved_at.isoformat() if approved_at else None),
        ("refundedAt", refunded_at.isoformat() if refunded_at else None),
    ):
        if value is not None:
            status[key] = value
    return api_payment.Payment.model_validate(
        {
            "metadata": {"name": "r1", "namespace": "shop", "uid": "p-uid", "generation": generation},
            "spec": {
                "rental": "r1",
                "amount": 1_076_400,
                "currency": "KRW",
                "customerId": "cust-7",
                "idempotencyKey": "rental-uid-1",
                "refund": refund,
            },
            "status": status,
        }
    )


def _conditions(status: api_payment.PaymentStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status.value, c.reason) for c in status.conditions}


def _times(status: api_payment.PaymentStatus) -> dict[str, datetime.datetime]:
    return {c.type: c.last_transition_time for c in status.conditions}


def _with_status(payment: api_payment.Payment, status: api_payment.PaymentStatus) -> api_payment.Payment:
    return payment.model_copy(update={"status": status})


# --- next_call: every phase x refund request x "was a charge ever sent" --------------------------------
# (phase, refund) -> (next call with attempts == 0, next call with attempts > 0)
NEXT_CALLS: dict[tuple[str | None, bool], tuple[Call | None, Call | None]] = {
    (None, False): (Call.CHARGE, Call.CHARGE),
    ("Pending", False): (Call.CHARGE, Call.CHARGE),
    ("Deferred", False): (Call.CHARGE, Call.CHARGE),
    ("Approved", False): (None, None),
    ("Refunding", False): (None, None),
    ("Declined", False): (None, None),
    ("Refunded", False): (None, None),
    ("Failed", False): (None, None),
    # a refund request: void what never left, learn the outcome of what may have, refund what was taken
    (None, True): (Call.VOID, Call.CHARGE),
    ("Pending", True): (Call.VOID, Call.CHARGE),
    ("Deferred", True): (Call.VOID, Call.CHARGE),
    ("Approved", True): (Call.REFUND, Call.REFUND),
    ("Refunding", True): (Call.REFUND, Call.REFUND),
    ("Declined", True): (None, None),
    ("Refunded", True): (None, None),
    ("Failed", True): (None, None),
}


def test_the_table_covers_every_phase() -> None:
    assert {phase for phase, _ in NEXT_CALLS} == {None, *(p.value for p in api_payment.PaymentPhase)}


@pytest.mark.parametrize(
    ("phase", "refund", "attempts", "expected"),
    [
        (phase, refund, attempts, calls[0] if attempts == 0 else calls[1])
        for (phase, refund), calls in NEXT_CALLS.items()
        for attempts in (0, 1, 4)
    ],
)
def test_next_call(phase: str | None, refund: bool, attempts: int, expected: Call | None) -> None:
    assert payments.next_call(_payment(phase, attempts=attempts, refund=refund)) == expected


# --- charge_starting ------------------------------------------------------------------------------------
def test_first_charge_is_recorded_before_it_leaves() -> None:
    status = payments.charge_starting(_payment(), NOW)
    assert status is not None
    assert status.phase is api_payment.PaymentPhase.PENDING
    assert status.attempts == 1
    assert _conditions(status) == {"Paid": ("False", "PaymentPending"), "Ready": ("False", "PaymentPending")}
    assert all(c.observed_generation == 1 for c in status.conditions)


def test_first_charge_keeps_a_phase_already_set() -> None:
    status = payments.charge_starting(_payment("Deferred"), NOW)
    assert status is not None
    assert status.phase is api_payment.PaymentPhase.DEFERRED
    assert status.attempts == 1


@pytest.mark.parametrize("attempts", [1, 2, 7])
def test_later_charges_need_no_separate_write(attempts: int) -> None:
    assert payments.charge_starting(_payment("Deferred", attempts=attempts), NOW) is None


def test_after_charge_starting_a_refund_no_longer_voids() -> None:
    payment = _payment(refund=True)
    assert payments.next_call(payment) is Call.VOID
    started = payments.charge_starting(payment, NOW)
    assert started is not None
    assert payments.next_call(_with_status(payment, started)) is Call.CHARGE


# --- answers to a charge -------------------------------------------------------------------------------
def test_approved() -> None:
    payment = _payment("Deferred", attempts=2, last_error="503")
    status = payments.charge_approved(payment, "tx-1", NOW, attempts=3)
    assert status.phase is api_payment.PaymentPhase.APPROVED
    assert status.transaction_id == "tx-1"
    assert status.approved_at == NOW
    assert status.attempts == 3
    assert status.last_error is None
    assert _conditions(status) == {"Paid": ("True", "PaymentApproved"), "Ready": ("True", "PaymentApproved")}
    paid = next(c for c in status.conditions if c.type == "Paid")
    assert "tx-1" in paid.message


def test_approved_again_keeps_the_first_times() -> None:
    payment = _payment("Pending", attempts=1)
    first = payments.charge_approved(payment, "tx-1", NOW, attempts=1)
    again = payments.charge_approved(_with_status(payment, first), "tx-1", LATER, attempts=2)
    assert again.approved_at == NOW
    assert _times(again) == {"Paid": NOW, "Ready": NOW}
    assert again.attempts == 2


def test_declined() -> None:
    status = payments.charge_declined(
        _payment("Pending", attempts=1), "tx-2", "card expired", NOW, attempts=1
    )
    assert status.phase is api_payment.PaymentPhase.DECLINED
    assert status.transaction_id == "tx-2"
    assert status.last_error == "card expired"
    assert status.approved_at is None
    assert _conditions(status) == {
        "Paid": ("False", "PaymentDeclined"),
        "Ready": ("False", "PaymentDeclined"),
    }
    assert all(c.message == "card expired" for c in status.conditions)


def test_declined_without_a_transaction_id() -> None:
    status = payments.charge_declined(_payment("Pending", attempts=1), None, "no", NOW, attempts=2)
    assert status.transaction_id is None
    assert status.attempts == 2


def test_failed() -> None:
    status = payments.charge_failed(_payment("Pending", attempts=1), "400 unknown currency", NOW, attempts=1)
    assert status.phase is api_payment.PaymentPhase.FAILED
    assert status.last_error == "400 unknown currency"
    assert _conditions(status) == {"Paid": ("False", "PaymentFailed"), "Ready": ("False", "PaymentFailed")}


def test_unavailable_defers() -> None:
    status = payments.charge_unavailable(_payment("Pending", attempts=1), "circuit open", NOW, attempts=1)
    assert status.phase is api_payment.PaymentPhase.DEFERRED
    assert status.last_error == "circuit open"
    assert status.attempts == 1
    assert _conditions(status) == {
        "Paid": ("False", "PaymentDeferred"),
        "Ready": ("False", "PaymentDeferred"),
    }


def test_unavailable_again_counts_attempts_and_keeps_transition_times() -> None:
    payment = _payment("Pending", attempts=1)
    first = payments.charge_unavailable(payment, "timeout", NOW, attempts=1)
    again = payments.charge_unavailable(_with_status(payment, first), "503", LATER, attempts=2)
    assert again.attempts == 2
    assert again.last_error == "503"
    assert _times(again) == {"Paid": NOW, "Ready": NOW}


def test_pending_to_deferred_keeps_the_time_of_a_status_that_did_not_flip() -> None:
    payment = _payment(attempts=0)
    starting = payments.charge_starting(payment, EARLIER)
    assert starting is not None
    deferred = payments.charge_unavailable(_with_status(payment, starting), "timeout", NOW, attempts=1)
    assert _times(deferred) == {"Paid": EARLIER, "Ready": EARLIER}  # False -> False
    approved = payments.charge_approved(_with_status(payment, deferred), "tx", LATER, attempts=2)
    assert _times(approved) == {"Paid": LATER, "Ready": LATER}  # False -> True


# --- refunds ----------------------------------------------------------------------------------------------
def _approved(refund: bool = True) -> api_payment.Payment:
    payment = _payment("Pending", attempts=1, refund=refund)
    return _with_status(payment, payments.charge_approved(payment, "tx-1", EARLIER, attempts=1))


def test_refund_done() -> None:
    status = payments.refund_done(_approved(), NOW)
    assert status.phase is api_payment.PaymentPhase.REFUNDED
    assert status.refunded_at == NOW
    assert status.approved_at == EARLIER
    assert status.transaction_id == "tx-1"
    assert status.last_error is None
    assert _conditions(status) == {
        "Paid": ("False", "Refunded"),
        "Refunded": ("True", "Refunded"),
        "Ready": ("False", "Refunded"),
    }
    assert [c.type for c in status.conditions] == ["Paid", "Ready", "Refunded"]


def test_refund_done_again_keeps_the_first_time() -> None:
    payment = _approved()
    first = payments.refund_done(payment, NOW)
    again = payments.refund_done(_with_status(payment, first), LATER)
    assert again.refunded_at == NOW
    assert _times(again) == {"Paid": NOW, "Refunded": NOW, "Ready": NOW}


def test_refund_unavailable_keeps_asking() -> None:
    payment = _approved()
    status = payments.refund_unavailable(payment, "503", NOW)
    assert status.phase is api_payment.PaymentPhase.REFUNDING
    assert status.last_error == "503"
    assert status.refunded_at is None
    assert status.attempts == 1
    # Paid stays as the approval left it: the money is still taken
    assert _conditions(status) == {
        "Paid": ("True", "PaymentApproved"),
        "Refunded": ("False", "Refunding"),
        "Ready": ("True", "PaymentApproved"),
    }
    refunded = next(c for c in status.conditions if c.type == "Refunded")
    assert "503" in refunded.message
    assert payments.next_call(_with_status(payment, status)) is Call.REFUND


def test_refund_after_a_failed_attempt_clears_the_error() -> None:
    payment = _approved()
    failing = _with_status(payment, payments.refund_unavailable(payment, "503", NOW))
    status = payments.refund_done(failing, LATER)
    assert status.last_error is None
    assert _times(status)["Refunded"] == LATER  # False -> True
    assert payments.next_call(_with_status(payment, status)) is None


def test_voided() -> None:
    payment = _payment(refund=True)
    status = payments.voided(payment, NOW)
    assert status.phase is api_payment.PaymentPhase.REFUNDED
    assert status.refunded_at == NOW
    assert status.attempts == 0
    assert status.transaction_id is None
    assert _conditions(status) == {
        "Paid": ("False", "NotCharged"),
        "Refunded": ("True", "NotCharged"),
        "Ready": ("False", "NotCharged"),
    }
    assert payments.next_call(_with_status(payment, status)) is None


def test_voided_again_keeps_the_first_time() -> None:
    payment = _payment(refund=True)
    first = payments.voided(payment, NOW)
    assert payments.voided(_with_status(payment, first), LATER).refunded_at == NOW


# --- shared behaviour -------------------------------------------------------------------------------------
STATUS_FUNCTIONS = {
    "approved": lambda p, now: payments.charge_approved(p, "tx", now, attempts=1),
    "declined": lambda p, now: payments.charge_declined(p, "tx", "no", now, attempts=1),
    "failed": lambda p, now: payments.charge_failed(p, "bad", now, attempts=1),
    "unavailable": lambda p, now: payments.charge_unavailable(p, "down", now, attempts=1),
    "refund_done": payments.refund_done,
    "refund_unavailable": lambda p, now: payments.refund_unavailable(p, "down", now),
    "voided": payments.voided,
    "starting": payments.charge_starting,
}


@pytest.mark.parametrize("function", STATUS_FUNCTIONS.values(), ids=STATUS_FUNCTIONS.keys())
def test_status_functions_set_the_generation_and_leave_the_input_alone(function: Any) -> None:
    payment = _payment(generation=4)
    before = payment.model_copy(deep=True)
    status = function(payment, NOW)
    assert payment == before
    assert status.conditions
    assert all(c.observed_generation == 4 for c in status.conditions)
    assert [c.type for c in status.conditions] == sorted(c.type for c in status.conditions)


# --- answers and failures: what is final, what is retried, and when -------------------------------------
Failure = payments.Failure
RETRY = 30.0


@pytest.mark.parametrize(
    ("approved", "reason", "expected"),
    [
        (True, None, ("Approved", None)),
        (False, "insufficient funds", ("Declined", "insufficient funds")),
        (False, None, ("Declined", "declined")),
    ],
)
def test_an_answer_is_final(approved: bool, reason: str | None, expected: tuple[str, str | None]) -> None:
    payment = _payment("Pending", attempts=1)
    outcome = payments.charge_answered(
        payment, approved=approved, transaction_id="tx-1", reason=reason, now=NOW, attempts=2
    )
    assert outcome.retry_after is None
    assert (outcome.status.phase, outcome.status.last_error) == expected
    assert (outcome.status.transaction_id, outcome.status.attempts) == ("tx-1", 2)


# failure -> (phase, attempts recorded, retry after) for the third request of a Payment that recorded two
CHARGE_FAILURES: dict[Failure, tuple[str, int, float | None]] = {
    Failure.NOT_SENT: ("Deferred", 2, RETRY),  # never made: the count stays as recorded
    Failure.NOT_ARRIVED: ("Deferred", 2, RETRY),  # surely never arrived: not counted
    Failure.NO_ANSWER: ("Deferred", 3, RETRY),  # may have charged: counted, asked again under the key
    Failure.LATER: ("Deferred", 3, RETRY),  # 408, 425, 429: "not now"
    Failure.GARBLED: ("Deferred", 3, RETRY),  # may hide a charge: like an unknown outcome
    Failure.REFUSED: ("Failed", 3, None),  # a 4xx refusing the request itself: final
}


def test_the_charge_table_covers_every_failure() -> None:
    assert set(CHARGE_FAILURES) == set(Failure)


@pytest.mark.parametrize(("failure", "expected"), CHARGE_FAILURES.items())
def test_a_failed_charge(failure: Failure, expected: tuple[str, int, float | None]) -> None:
    outcome = payments.charge_went_wrong(
        _payment("Deferred", attempts=2), failure, "boom", NOW, attempts=3, retry_seconds=RETRY
    )
    assert (outcome.status.phase, outcome.status.attempts, outcome.retry_after) == expected
    assert outcome.status.last_error == "boom"
    assert _conditions(outcome.status)["Paid"][1] == (
        "PaymentFailed" if expected[0] == "Failed" else "PaymentDeferred"
    )


def test_an_open_breaker_is_asked_again_when_it_lets_a_trial_through() -> None:
    payment = _payment("Pending", attempts=1)
    later = payments.charge_went_wrong(
        payment, Failure.NOT_SENT, "open", NOW, attempts=2, retry_seconds=RETRY, retry_after=90.0
    )
    assert later.retry_after == 90.0
    soon = payments.charge_went_wrong(
        payment, Failure.NOT_SENT, "open", NOW, attempts=2, retry_seconds=RETRY, retry_after=1.0
    )
    assert soon.retry_after == RETRY


# failure -> (last error, retry after): a fault is retried soon; an answer refusing it needs a person,
# so it is asked again slowly and says it was refused
REFUND_FAILURES: dict[Failure, tuple[str, float]] = {
    Failure.NOT_SENT: ("no", RETRY),
    Failure.NOT_ARRIVED: ("no", RETRY),
    Failure.NO_ANSWER: ("no", RETRY),
    Failure.LATER: ("refused: no", RETRY * 6),
    Failure.REFUSED: ("refused: no", RETRY * 6),
    Failure.GARBLED: ("refused: no", RETRY * 6),
}


@pytest.mark.parametrize(("failure", "expected"), REFUND_FAILURES.items())
def test_a_failed_refund_stays_requested(failure: Failure, expected: tuple[str, float]) -> None:
    payment = _payment("Approved", attempts=1, refund=True, transaction="tx-1")
    outcome = payments.refund_went_wrong(payment, failure, "no", NOW, retry_seconds=RETRY)
    assert (outcome.status.phase, outcome.status.last_error, outcome.retry_after) == ("Refunding", *expected)


def test_a_refund_without_a_transaction_waits_for_a_person() -> None:
    outcome = payments.refund_without_transaction(_payment("Approved", attempts=1, refund=True), NOW)
    assert outcome.retry_after is None
    assert outcome.status.phase == "Refunding"
    assert outcome.status.last_error == "approved charge has no transaction id"


# --- dunning: a declined monthly charge is tried again as an attempt of its own -------------------------
def _declined(*, asked: int, done: int | None = 1, refund: bool = False) -> api_payment.Payment:
    payment = _payment(
        "Declined", attempts=1, transaction="tx-declined", last_error="insufficient_funds", refund=refund
    )
    spec = payment.spec.model_copy(update={"attempt": asked, "period": 2})
    status = payment.status.model_copy(update={"attempt": done})
    return payment.model_copy(update={"spec": spec, "status": status})


def test_a_declined_charge_is_charged_again_only_when_its_rental_asks_for_another_attempt() -> None:
    assert payments.next_call(_declined(asked=1)) is None
    assert payments.next_call(_declined(asked=2)) is Call.CHARGE
    # Asked for, then cancelled: a refund of a declined charge is nothing to do.
    assert payments.next_call(_declined(asked=2, refund=True)) is None
    # Made already (the attempt the status describes is the one asked for).
    assert payments.next_call(_declined(asked=2, done=2)) is None


def test_a_new_attempt_starts_over_pending_under_its_own_number() -> None:
    status = payments.charge_starting(_declined(asked=2), NOW)
    assert status is not None
    assert (status.phase, status.attempt, status.attempts, status.transaction_id) == ("Pending", 2, 1, None)
    assert _conditions(status)["Paid"] == ("False", "PaymentPending")
    # Its later requests (a lost answer asked again) count within the attempt; no second write-ahead.
    started = _declined(asked=2).model_copy(update={"status": status})
    assert payments.charge_starting(started, NOW) is None
    assert payments.next_call(started) is Call.CHARGE


def test_the_first_write_ahead_records_attempt_1() -> None:
    status = payments.charge_starting(_payment(), NOW)
    assert status is not None and (status.attempt, status.attempts) == (1, 1)
