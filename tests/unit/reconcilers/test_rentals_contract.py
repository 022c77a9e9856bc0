"""reconcilers.rentals, the rental in force as a monthly contract: recurring charges, dunning, the early
endings (withdrawal, termination with its fee, non-payment), the term's end, and the Payments kept.

Each test builds what `decide` sees at one moment of a contract (the Rental with the status earlier
passes left, its Purifier, its charges, its Delivery, the time) and checks the plan: the actions, the
phase and conditions, the billing status, the history entries (one text each) and the Events.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from rental_operator.api import delivery as api_delivery
from rental_operator.api import payment as api_payment
from rental_operator.api import purifier as api_purifier
from rental_operator.api import rental as api_rental
from rental_operator.reconcilers import billing, contract, rentals

NAME, PURIFIER, UID = "kim", "aquapure-300", "uid-1"
FEE = 33_000
ANCHOR = datetime.datetime(2027, 1, 31, 9, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
TERMS = contract.Terms(dunning=(DAY, 3 * DAY), withdrawal=14 * DAY, history=3)
DELIVERED_AT = ANCHOR + 2 * DAY


def _due(period: int) -> datetime.datetime:
    return billing.period_due_at(TERMS.cycle, ANCHOR, period)


def _cond(type_: str, status: str, reason: str) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": "earlier",
        "lastTransitionTime": "2027-01-31T09:00:00Z",
    }


def _billing(**changes: Any) -> dict[str, Any]:
    terms = {
        "monthlyFee": FEE,
        "currency": "KRW",
        "mandatoryMonths": 36,
        "earlyTerminationPercent": 10,
        "periodsTotal": 36,
        "periodsPaid": 1,
        "paidAmount": FEE,
        "anchor": ANCHOR.isoformat(),
        "nextChargeAt": _due(2).isoformat(),
        "termEndsAt": billing.term_ends_at(TERMS.cycle, ANCHOR, 36).isoformat(),
        "withdrawalEndsAt": (DELIVERED_AT + 14 * DAY).isoformat(),
    }
    return {**terms, **changes}


def _rental(
    phase: str = "Confirmed",
    *,
    months: int = 36,
    cancelled: bool = False,
    deleting: bool = False,
    delivery: str = "Delivered",
    **billing_changes: Any,
) -> api_rental.Rental:
    metadata: dict[str, Any] = {
        "name": NAME,
        "namespace": "shop",
        "uid": UID,
        "generation": 1,
        "finalizers": [rentals.FINALIZER],
        "creationTimestamp": ANCHOR.isoformat(),
    }
    if deleting:
        metadata["deletionTimestamp"] = ANCHOR.isoformat()
    status = {
        "phase": phase,
        "billing": _billing(**billing_changes),
        "delivery": {"name": NAME, "phase": delivery, "trackingNumber": "TRK-1"},
        "payment": {"name": "kim-p1", "period": 1, "phase": "Approved", "amount": FEE, "currency": "KRW"},
        "conditions": [_cond("StockReserved", "True", "Reserved"), _cond("Ready", "True", "Confirmed")],
        "history": [{"seq": 1, "kind": "Rental", "phase": phase, "at": ANCHOR.isoformat()}],
    }
    return api_rental.Rental.model_validate(
        {
            "metadata": metadata,
            "spec": {
                "purifier": PURIFIER,
                "customer": {
                    "id": "c-1",
                    "name": "김민준",
                    "phone": "+821012345678",
                    "address": "서울 강남구",
                },
                "months": months,
                "cancelled": cancelled,
            },
            "status": status,
        }
    )


def _purifier(*, holding: bool = True) -> api_purifier.Purifier:
    pending = [{"rental": NAME, "uid": UID, "operation": "Reserve" if holding else "Release"}]
    return api_purifier.Purifier.model_validate(
        {
            "metadata": {"name": PURIFIER, "namespace": "shop"},
            "spec": {"model": "AquaPure 300", "monthlyFee": FEE, "stock": 5, "mandatoryMonths": 36},
            "status": {"allocated": 1 if holding else 0, "pending": pending},
        }
    )


def _charge(
    period: int | None,
    phase: str | None,
    *,
    attempt: int = 1,
    refund: bool = False,
    amount: int = FEE,
    **status: Any,
) -> api_payment.Payment:
    key = billing.period_key(UID, period) if period is not None else billing.fee_key(UID)
    name = rentals.payment_name(NAME, period) if period is not None else rentals.fee_payment_name(NAME)
    body_status: dict[str, Any] = {"attempt": attempt, "attempts": 1, **status}
    if phase is not None:
        body_status["phase"] = phase
    if phase == "Approved":
        body_status.setdefault("approvedAt", (_due(period or 1)).isoformat())
        body_status.setdefault("transactionId", f"tx-{period}")
    return api_payment.Payment.model_validate(
        {
            "metadata": {"name": name, "namespace": "shop", "uid": f"pay-{name}"},
            "spec": {
                "rental": NAME,
                "period": period,
                "amount": amount,
                "currency": "KRW",
                "customerId": "c-1",
                "idempotencyKey": key,
                "attempt": attempt,
                "refund": refund,
            },
            "status": body_status,
        }
    )


def _delivery(phase: str = "Delivered", *, cancelled: bool = False) -> api_delivery.Delivery:
    return api_delivery.Delivery.model_validate(
        {
            "metadata": {"name": NAME, "namespace": "shop", "uid": "dlv-1"},
            "spec": {
                "rental": NAME,
                "purifier": PURIFIER,
                "address": "서울 강남구",
                "customerId": "c-1",
                "cancelled": cancelled,
            },
            "status": {"phase": phase, "trackingNumber": "TRK-1", "deliveredAt": DELIVERED_AT.isoformat()},
        }
    )


def _facts(
    rental: api_rental.Rental,
    now: datetime.datetime,
    *charges: api_payment.Payment,
    delivery: api_delivery.Delivery | None = None,
    purifier: api_purifier.Purifier | None = None,
    first: api_payment.Payment | None = None,
    mismatch: str | None = None,
) -> rentals.Facts:
    return rentals.Facts(
        rental=rental,
        purifier=purifier or _purifier(),
        payment=first if first is not None else _charge(1, "Approved"),
        delivery=delivery or _delivery(),
        now=now,
        deferral_timeout=datetime.timedelta(hours=1),
        charges={c.spec.period: c for c in charges if c.spec.period is not None},
        fee=next((c for c in charges if c.spec.period is None), None),
        terms=TERMS,
        payment_mismatch=mismatch,
    )


def _conditions(plan: rentals.Plan) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status.value, c.reason) for c in plan.status.conditions}


def _told(facts: rentals.Facts, plan: rentals.Plan) -> list[tuple[str, str]]:
    known = {entry.seq for entry in facts.rental.status.history}
    return [(e.kind, e.phase) for e in plan.status.history if e.seq not in known]


# --- the first charge ------------------------------------------------------------------------------------
def test_period_1_approved_starts_the_contract_at_its_payment_time() -> None:
    rental = api_rental.Rental.model_validate(
        {
            **_rental().model_dump(by_alias=True, mode="json"),
            "status": {
                "phase": "AwaitingPayment",
                "billing": {"monthlyFee": FEE, "currency": "KRW", "mandatoryMonths": 36, "periodsTotal": 36},
                "conditions": [_cond("StockReserved", "True", "Reserved")],
            },
        }
    )
    paid_at = ANCHOR
    plan = rentals.decide(
        _facts(rental, paid_at, first=_charge(1, "Approved", approvedAt=paid_at.isoformat()), delivery=None)
    )
    terms = plan.status.billing
    assert terms is not None
    assert (terms.anchor, terms.periods_paid, terms.paid_amount) == (paid_at, 1, FEE)
    assert terms.next_charge_at == datetime.datetime(2027, 2, 28, 9, 0, tzinfo=datetime.UTC)
    assert terms.term_ends_at == datetime.datetime(2030, 1, 31, 9, 0, tzinfo=datetime.UTC)
    assert plan.status.phase is api_rental.RentalPhase.CONFIRMED


# --- recurring charges -------------------------------------------------------------------------------------
def test_nothing_is_charged_before_month_2_is_due_and_the_rental_looks_again_then() -> None:
    now = _due(2) - DAY
    plan = rentals.decide(_facts(_rental(), now))
    assert not any(isinstance(a, rentals.CreatePayment) for a in plan.actions)
    assert plan.requeue_after == DAY.total_seconds()


def test_a_due_month_is_charged_as_its_own_payment() -> None:
    plan = rentals.decide(_facts(_rental(), _due(2)))
    assert plan.actions == (
        rentals.CreatePayment(
            "kim-p2",
            api_payment.PaymentSpec(
                rental=NAME,
                period=2,
                amount=FEE,
                currency="KRW",
                customer_id="c-1",
                idempotency_key="rental-uid-1-p2",
            ),
        ),
    )
    assert plan.status.phase is api_rental.RentalPhase.CONFIRMED
    assert _told(_facts(_rental(), _due(2)), plan) == []


def test_a_paid_month_is_counted_with_a_receipt() -> None:
    facts = _facts(_rental(), _due(2) + DAY, _charge(2, "Approved"))
    plan = rentals.decide(facts)
    assert plan.status.billing is not None
    assert (plan.status.billing.periods_paid, plan.status.billing.paid_amount) == (2, 2 * FEE)
    assert plan.status.billing.next_charge_at == _due(3)
    assert _told(facts, plan) == [("Billing", "Charged")]
    entry = plan.status.history[-1]
    assert (entry.period, entry.amount) == (2, FEE)
    assert _conditions(plan)["Paid"] == ("True", "PaidUp")
    assert plan.status.payment is not None and plan.status.payment.name == "kim-p2"


def test_a_payment_system_fault_keeps_the_rental_confirmed_and_silent() -> None:
    facts = _facts(_rental(), _due(2) + DAY, _charge(2, "Deferred", lastError="503"))
    plan = rentals.decide(facts)
    assert plan.status.phase is api_rental.RentalPhase.CONFIRMED
    assert plan.status.billing is not None and plan.status.billing.past_due is None
    assert _told(facts, plan) == []
    assert plan.actions == ()


def test_a_decline_is_past_due_with_a_text_and_retried_on_the_schedule() -> None:
    declined_at = _due(2) + datetime.timedelta(minutes=1)
    facts = _facts(_rental(), declined_at, _charge(2, "Declined", lastError="insufficient_funds"))
    plan = rentals.decide(facts)
    assert plan.status.phase is api_rental.RentalPhase.PAST_DUE
    assert _conditions(plan)["Paid"] == ("False", "ChargeDeclined")
    assert _conditions(plan)["Ready"] == ("True", "Confirmed")
    assert _told(facts, plan) == [("Billing", "ChargeDeclined"), ("Rental", "PastDue")]
    assert plan.status.billing is not None and plan.status.billing.past_due is not None
    assert plan.status.billing.past_due.next_attempt_at == _due(2) + DAY
    assert plan.requeue_after == pytest.approx((_due(2) + DAY - declined_at).total_seconds())

    # At the retry's time, another attempt under a key of its own; a success makes it Confirmed again.
    past_due = _rental("PastDue", pastDue=plan.status.billing.past_due.model_dump(by_alias=True, mode="json"))
    retry = rentals.decide(_facts(past_due, _due(2) + DAY, _charge(2, "Declined")))
    assert retry.actions == (rentals.RetryCharge("kim-p2", 2),)
    paid = rentals.decide(_facts(past_due, _due(2) + DAY, _charge(2, "Approved", attempt=2)))
    assert paid.status.phase is api_rental.RentalPhase.CONFIRMED
    assert paid.status.billing is not None and paid.status.billing.past_due is None


def test_exhausted_dunning_ends_the_contract_for_non_payment_without_refund_or_fee() -> None:
    facts = _facts(_rental("PastDue"), _due(2) + 4 * DAY, _charge(2, "Declined", attempt=3))
    plan = rentals.decide(facts)
    assert plan.status.phase is api_rental.RentalPhase.CANCELLING
    assert plan.status.billing is not None and plan.status.billing.ending is api_rental.Ending.NON_PAYMENT
    assert rentals.StopDelivery(NAME) in plan.actions
    assert not any(isinstance(a, (rentals.RequestRefund, rentals.CreatePayment)) for a in plan.actions)

    ending = _rental("Cancelling", ending="NonPayment", endingAt=(_due(2) + 4 * DAY).isoformat())
    returned = _facts(
        ending,
        _due(2) + 9 * DAY,
        _charge(2, "Declined", attempt=3),
        delivery=_delivery("Returned", cancelled=True),
        purifier=_purifier(holding=False),
    )
    done = rentals.decide(returned)
    assert done.status.phase is api_rental.RentalPhase.CANCELLED
    assert _conditions(done)["Paid"] == ("False", "NonPayment")
    assert not any(isinstance(a, rentals.RequestRefund) for a in done.actions)


# --- cancellation by time -----------------------------------------------------------------------------------
def test_cancelling_within_the_withdrawal_window_refunds_every_charge() -> None:
    now = DELIVERED_AT + 5 * DAY
    plan = rentals.decide(_facts(_rental(cancelled=True, periodsPaid=2), now, _charge(2, "Approved")))
    assert plan.status.billing is not None and plan.status.billing.ending is api_rental.Ending.WITHDRAWAL
    assert {a for a in plan.actions if isinstance(a, rentals.RequestRefund)} == {
        rentals.RequestRefund("kim-p1"),
        rentals.RequestRefund("kim-p2"),
    }
    assert rentals.StopDelivery(NAME) in plan.actions


def test_cancelling_before_delivery_is_a_withdrawal_even_months_later() -> None:
    rental = _rental(cancelled=True, delivery="Shipping", withdrawalEndsAt=None)
    plan = rentals.decide(_facts(rental, _due(3), delivery=_delivery("Shipping")))
    assert plan.status.billing is not None and plan.status.billing.ending is api_rental.Ending.WITHDRAWAL


def test_cancelling_later_inside_the_mandatory_period_charges_the_fee_once_and_keeps_paid_months() -> None:
    now = _due(4) + DAY
    charges = (_charge(2, "Approved"), _charge(3, "Approved"), _charge(4, "Pending"))
    facts = _facts(_rental(cancelled=True, periodsPaid=3), now, *charges)
    plan = rentals.decide(facts)
    terms = plan.status.billing
    assert terms is not None and terms.ending is api_rental.Ending.TERMINATION
    fee = FEE * (36 - 3) * 10 // 100
    assert terms.fee_amount == fee
    assert terms.next_charge_at is None
    # The charge in flight is given back; paid months stay paid; the fee is its own charge.
    assert [a for a in plan.actions if isinstance(a, rentals.RequestRefund)] == [
        rentals.RequestRefund("kim-p4")
    ]
    (create,) = [a for a in plan.actions if isinstance(a, rentals.CreatePayment)]
    assert create.name == "kim-fee"
    assert (create.spec.period, create.spec.amount, create.spec.idempotency_key) == (
        None,
        fee,
        "rental-uid-1-fee",
    )

    # Decided once: a later pass keeps the ending and the fee, and does not charge it twice.
    ending = _rental(
        "Cancelling",
        cancelled=True,
        periodsPaid=3,
        ending="Termination",
        endingAt=now.isoformat(),
        feeAmount=fee,
    )
    again = rentals.decide(_facts(ending, now + DAY, *charges[:2], _charge(None, "Pending", amount=fee)))
    assert not any(isinstance(a, rentals.CreatePayment) for a in again.actions)


def test_a_paid_fee_is_told_once_and_the_termination_settles_when_the_unit_is_back() -> None:
    fee = FEE * 33 * 10 // 100
    now = _due(4) + 9 * DAY
    ending = _rental(
        "Cancelling",
        cancelled=True,
        periodsPaid=3,
        ending="Termination",
        endingAt=now.isoformat(),
        feeAmount=fee,
    )
    facts = _facts(
        ending,
        now,
        _charge(2, "Approved"),
        _charge(3, "Approved"),
        _charge(None, "Approved", amount=fee),
        delivery=_delivery("Returned", cancelled=True),
        purifier=_purifier(holding=False),
    )
    plan = rentals.decide(facts)
    assert ("Billing", "FeeCharged") in _told(facts, plan)
    assert plan.status.phase is api_rental.RentalPhase.CANCELLED
    assert _conditions(plan)["Paid"] == ("False", "Terminated")
    assert not any(isinstance(a, rentals.RequestRefund) for a in plan.actions)


def test_cancelling_after_the_mandatory_period_costs_nothing() -> None:
    now = _due(37) + DAY
    rental = _rental(cancelled=True, periodsPaid=37, months=48, periodsTotal=48)
    plan = rentals.decide(_facts(rental, now))
    assert plan.status.billing is not None
    assert plan.status.billing.ending is api_rental.Ending.TERMINATION
    assert plan.status.billing.fee_amount is None
    assert not any(isinstance(a, rentals.CreatePayment) for a in plan.actions)


# --- the term's end -------------------------------------------------------------------------------------
def test_a_paid_up_term_completes_and_the_unit_becomes_the_customers() -> None:
    end = billing.term_ends_at(TERMS.cycle, ANCHOR, 3)
    rental = _rental(
        months=3,
        periodsTotal=3,
        periodsPaid=3,
        paidAmount=3 * FEE,
        nextChargeAt=None,
        termEndsAt=end.isoformat(),
    )
    facts = _facts(rental, end, _charge(2, "Approved"), _charge(3, "Approved"))
    plan = rentals.decide(facts)
    assert rentals.Transfer(PURIFIER) in plan.actions
    assert not any(isinstance(a, (rentals.Release, rentals.StopDelivery)) for a in plan.actions)
    assert plan.status.phase is api_rental.RentalPhase.COMPLETED
    assert _conditions(plan)["StockReserved"] == ("False", "Transferred")
    assert ("Rental", "Completed") in _told(facts, plan)


def test_a_completed_rental_deleted_undoes_nothing() -> None:
    facts = _facts(_rental("Completed", deleting=True), _due(40), purifier=_purifier(holding=False))
    plan = rentals.decide(facts)
    assert plan.actions == (rentals.RemoveFinalizer(),)


def test_a_raised_term_is_billed_like_the_rest() -> None:
    end = billing.term_ends_at(TERMS.cycle, ANCHOR, 3)
    rental = _rental(months=6, periodsTotal=3, periodsPaid=3, nextChargeAt=None, termEndsAt=end.isoformat())
    plan = rentals.decide(_facts(rental, end, _charge(2, "Approved"), _charge(3, "Approved")))
    assert plan.status.phase is api_rental.RentalPhase.CONFIRMED
    assert plan.status.billing is not None and plan.status.billing.periods_total == 6
    assert [a.name for a in plan.actions if isinstance(a, rentals.CreatePayment)] == ["kim-p4"]


# --- what is kept ------------------------------------------------------------------------------------------
def test_settled_charges_beyond_the_history_go_once_the_withdrawal_window_is_closed() -> None:
    charges = [_charge(k, "Approved") for k in range(2, 6)]
    rental = _rental(periodsPaid=5, paidAmount=5 * FEE)
    plan = rentals.decide(_facts(rental, _due(5) + DAY, *charges))
    assert [a for a in plan.actions if isinstance(a, rentals.DeletePayment)] == [
        rentals.DeletePayment("kim-p1"),
        rentals.DeletePayment("kim-p2"),
    ]
    # Inside the window every charge stays: a withdrawal refunds them all.
    early = _rental(periodsPaid=5, withdrawalEndsAt=(_due(6)).isoformat())
    assert not any(
        isinstance(a, rentals.DeletePayment)
        for a in rentals.decide(_facts(early, _due(5) + DAY, *charges)).actions
    )


def test_the_contract_runs_on_after_the_first_charge_was_deleted() -> None:
    facts = rentals.Facts(
        rental=_rental(periodsPaid=5, paidAmount=5 * FEE),
        purifier=_purifier(),
        payment=None,
        delivery=_delivery(),
        now=_due(6),
        deferral_timeout=datetime.timedelta(hours=1),
        charges={k: _charge(k, "Approved") for k in range(3, 6)},
        terms=TERMS,
    )
    plan = rentals.decide(facts)
    assert plan.status.phase is api_rental.RentalPhase.CONFIRMED
    assert [a.name for a in plan.actions if isinstance(a, rentals.CreatePayment)] == ["kim-p6"]


def test_a_stranger_under_a_months_payment_name_stops_the_charge_and_is_reported() -> None:
    plan = rentals.decide(
        _facts(_rental(), _due(2), mismatch="Payment 'kim-p2' is not this rental's: no Rental owns it")
    )
    assert not any(isinstance(a, rentals.CreatePayment) for a in plan.actions)
    assert _conditions(plan)["Paid"] == ("False", "PaymentMismatch")


def test_deleting_a_rental_in_force_late_charges_the_fee_before_its_finalizer_goes() -> None:
    now = _due(4) + DAY
    rental = _rental(deleting=True, periodsPaid=3, paidAmount=3 * FEE)
    plan = rentals.decide(_facts(rental, now, _charge(2, "Approved"), _charge(3, "Approved")))
    assert plan.status.billing is not None and plan.status.billing.ending is api_rental.Ending.TERMINATION
    assert [a.name for a in plan.actions if isinstance(a, rentals.CreatePayment)] == ["kim-fee"]
    assert rentals.RemoveFinalizer() not in plan.actions

    fee = FEE * 33 * 10 // 100
    ending = _rental(
        "Cancelling",
        deleting=True,
        periodsPaid=3,
        ending="Termination",
        endingAt=now.isoformat(),
        feeAmount=fee,
    )
    done = _facts(
        ending,
        now + DAY,
        _charge(2, "Approved"),
        _charge(3, "Approved"),
        _charge(None, "Approved", amount=fee),
        delivery=_delivery("Returned", cancelled=True),
        purifier=_purifier(holding=False),
    )
    assert rentals.RemoveFinalizer() in rentals.decide(done).actions
