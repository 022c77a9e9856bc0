"""reconcilers.contract: the monthly contract folded from its periods' Payments, and its next step."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from rental_operator.api import payment as api_payment
from rental_operator.api import purifier as api_purifier
from rental_operator.api import rental as api_rental
from rental_operator.reconcilers import billing, contract

ANCHOR = datetime.datetime(2027, 1, 31, 9, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
FEE = 33_000
TERMS = contract.Terms(dunning=(DAY, 3 * DAY, 5 * DAY), withdrawal=14 * DAY, history=3)


def _due(period: int) -> datetime.datetime:
    return billing.period_due_at(TERMS.cycle, ANCHOR, period)


def _locked(months: int = 12) -> api_rental.Billing:
    spec = api_purifier.PurifierSpec.model_validate(
        {"model": "AquaPure 300", "monthlyFee": FEE, "stock": 3, "mandatoryMonths": 36}
    )
    return contract.lock(spec, months)


def _started(months: int = 12) -> api_rental.Billing:
    return contract.start(TERMS, _locked(months), approved_at=ANCHOR, amount=FEE, months=months)


def _payment(
    period: int, phase: str | None, *, attempt: int = 1, done: int | None = None, **status: Any
) -> api_payment.Payment:
    return api_payment.Payment.model_validate(
        {
            "metadata": {"name": f"kim-p{period}", "namespace": "shop", "uid": f"pay-{period}"},
            "spec": {
                "rental": "kim",
                "period": period,
                "amount": FEE,
                "currency": "KRW",
                "customerId": "c-1",
                "idempotencyKey": billing.period_key("uid-1", period),
                "attempt": attempt,
            },
            "status": {"phase": phase, "attempt": done if done is not None else attempt, **status},
        }
    )


def _fold(
    current: api_rental.Billing, now: datetime.datetime, *payments: api_payment.Payment, months: int = 12
) -> contract.Folded:
    by_period = {p.spec.period or 0: p for p in payments}
    return contract.fold(TERMS, current, months=months, payments=by_period, now=now)


def test_terms_are_locked_from_the_purifier_at_application() -> None:
    locked = _locked(36)
    assert (locked.monthly_fee, locked.currency, locked.mandatory_months) == (FEE, "KRW", 36)
    assert (locked.early_termination_percent, locked.periods_total, locked.periods_paid) == (10, 36, 0)


def test_period_1_paid_sets_the_anchor_and_the_calendar() -> None:
    started = _started(12)
    assert (started.anchor, started.periods_paid, started.paid_amount) == (ANCHOR, 1, FEE)
    assert started.next_charge_at == datetime.datetime(2027, 2, 28, 9, 0, tzinfo=datetime.UTC)
    assert started.term_ends_at == datetime.datetime(2028, 1, 31, 9, 0, tzinfo=datetime.UTC)
    # Started once: a second look keeps the first anchor.
    assert contract.start(TERMS, started, approved_at=ANCHOR + DAY, amount=FEE, months=12) == started


def test_a_one_month_rental_owes_nothing_after_period_1() -> None:
    started = _started(1)
    assert started.next_charge_at is None
    folded = _fold(started, ANCHOR + DAY)
    assert folded.step == contract.Wait(_due(2))  # the term's end


def test_nothing_is_due_before_the_due_date() -> None:
    folded = _fold(_started(), ANCHOR + 5 * DAY)
    assert folded.step == contract.Wait(_due(2))
    assert folded.billing.next_charge_at == _due(2)
    assert folded.notices == ()


def test_a_due_period_is_charged_for_one_months_fee() -> None:
    assert _fold(_started(), _due(2)).step == contract.Charge(2, FEE)


def test_a_charge_in_flight_is_waited_for() -> None:
    for phase in (None, "Pending", "Deferred"):
        assert _fold(_started(), _due(2) + DAY, _payment(2, phase)).step == contract.InFlight(2)


def test_an_approved_period_is_counted_once_with_a_receipt() -> None:
    folded = _fold(_started(), _due(2) + DAY, _payment(2, "Approved"))
    assert (folded.billing.periods_paid, folded.billing.paid_amount) == (2, 2 * FEE)
    assert [(n.phase, n.period, n.amount) for n in folded.notices] == [("Charged", 2, FEE)]
    assert folded.billing.next_charge_at == _due(3)
    # Folded again (a retry of the pass, a restart): nothing more is counted or told.
    again = _fold(folded.billing, _due(2) + DAY, _payment(2, "Approved"))
    assert again.billing == folded.billing
    assert again.notices == ()


def test_periods_missed_while_down_are_billed_in_order_one_each() -> None:
    now = _due(5) + DAY  # the operator was down for three due dates
    first = _fold(_started(), now)
    assert first.step == contract.Charge(2, FEE)
    second = _fold(first.billing, now, _payment(2, "Approved"))
    assert second.step == contract.Charge(3, FEE)
    third = _fold(
        second.billing, now, _payment(2, "Approved"), _payment(3, "Approved"), _payment(4, "Approved")
    )
    assert third.billing.periods_paid == 4
    assert [n.period for n in third.notices] == [3, 4]
    assert third.step == contract.Charge(5, FEE)


def test_a_stale_view_never_uncounts_a_paid_period() -> None:
    paid = _fold(_started(), _due(2) + DAY, _payment(2, "Approved")).billing
    stale = _fold(paid, _due(2) + 2 * DAY, _payment(2, "Pending"))
    assert stale.billing.periods_paid == 2
    assert stale.step == contract.Wait(_due(3))


def test_a_decline_is_past_due_with_a_text_and_retried_on_the_schedule() -> None:
    now = _due(2) + datetime.timedelta(minutes=1)
    folded = _fold(_started(), now, _payment(2, "Declined", lastError="insufficient funds"))
    assert folded.billing.past_due == api_rental.PastDue(
        period=2, since=now, attempts=1, next_attempt_at=_due(2) + DAY
    )
    assert [(n.phase, n.at) for n in folded.notices] == [("ChargeDeclined", _due(2) + DAY)]
    assert "insufficient funds" in folded.notices[0].message
    assert folded.step == contract.Wait(_due(2) + DAY)
    # Told once.
    assert _fold(folded.billing, now, _payment(2, "Declined")).notices == ()
    # At the retry's time: a new attempt.
    assert _fold(folded.billing, _due(2) + DAY, _payment(2, "Declined")).step == contract.Retry(2, 2)


def test_a_retry_asked_for_but_not_yet_made_is_in_flight() -> None:
    past_due = _fold(_started(), _due(2), _payment(2, "Declined")).billing
    folded = _fold(past_due, _due(2) + DAY, _payment(2, "Declined", attempt=2, done=1))
    assert folded.step == contract.InFlight(2)
    assert folded.notices == ()


def test_a_second_decline_keeps_the_first_since_and_tells_again() -> None:
    first = _fold(_started(), _due(2), _payment(2, "Declined")).billing
    second = _fold(first, _due(2) + DAY, _payment(2, "Declined", attempt=2))
    assert second.billing.past_due == api_rental.PastDue(
        period=2, since=_due(2), attempts=2, next_attempt_at=_due(2) + 3 * DAY
    )
    assert [n.phase for n in second.notices] == ["ChargeDeclined"]


def test_a_failed_charge_is_dunned_like_a_decline() -> None:
    folded = _fold(_started(), _due(2), _payment(2, "Failed", lastError="card expired"))
    assert folded.billing.past_due is not None
    assert folded.step == contract.Wait(_due(2) + DAY)


def test_a_retry_that_succeeds_clears_past_due() -> None:
    past_due = _fold(_started(), _due(2), _payment(2, "Declined")).billing
    folded = _fold(past_due, _due(2) + DAY, _payment(2, "Approved", attempt=2))
    assert folded.billing.past_due is None
    assert folded.billing.periods_paid == 2


def test_the_exhausted_schedule_ends_the_contract_for_non_payment() -> None:
    now = _due(2) + 5 * DAY
    folded = _fold(_started(), now, _payment(2, "Declined", attempt=4))
    assert folded.step == contract.EndForNonPayment(2)
    assert folded.billing.past_due is not None
    assert folded.billing.past_due.next_attempt_at is None


def test_the_last_period_paid_tells_the_term_end_then_completes_at_the_end() -> None:
    months = 2
    paid = _fold(_started(months), _due(2), _payment(2, "Approved"), months=months)
    assert [n.phase for n in paid.notices] == ["Charged", "TermEnding"]
    assert paid.notices[1].at == billing.term_ends_at(TERMS.cycle, ANCHOR, months)
    assert paid.billing.next_charge_at is None
    assert paid.step == contract.Wait(_due(3))
    assert _fold(paid.billing, _due(3), _payment(2, "Approved"), months=months).step == contract.Complete()


def test_a_raised_term_is_billed_like_the_rest() -> None:
    paid = _fold(_started(2), _due(2), _payment(2, "Approved"), months=2).billing
    raised = _fold(paid, _due(3), _payment(2, "Approved"), months=4)
    assert raised.billing.periods_total == 4
    assert raised.billing.term_ends_at == _due(5)
    assert raised.step == contract.Charge(3, FEE)


def test_a_lowered_term_is_not_taken() -> None:
    # The API server refuses it (CEL); a stale or hand-made object still must not shorten a contract.
    folded = _fold(_started(12), ANCHOR + DAY, months=6)
    assert folded.billing.periods_total == 12


@pytest.mark.parametrize("months", [1, 12, 60])
def test_a_contract_paid_to_the_end_completes(months: int) -> None:
    current = _started(months)
    payments = [_payment(k, "Approved") for k in range(2, months + 1)]
    folded = _fold(current, _due(months + 1), *payments, months=months)
    assert folded.billing.periods_paid == months
    assert folded.billing.paid_amount == months * FEE
    assert folded.step == contract.Complete()
