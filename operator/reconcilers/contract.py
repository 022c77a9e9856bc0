"""The rental in force as a monthly contract: what is owed now, folded from the periods' Payments.

`reconcilers.rentals` decides the saga (reserve, charge period 1, ship, cancel); once period 1 is paid,
this module says what the contract needs next, as a pure function of the rental's `status.billing`,
its term (`spec.months`), the Payments of its periods and the time:

- `fold` advances `periodsPaid` over every period whose Payment is approved (in order, one at a time,
  so a restart that finds several approved never skips or collapses one), keeps `nextChargeAt` and
  `termEndsAt` in step with the term (raised by the customer: billed like the rest), and records a
  declined charge as `pastDue` with its next attempt on the dunning schedule;
- `Step` is the one next thing: charge a period that is due, retry a declined one, wait until a
  time, end the contract for non-payment, or complete it at the end of a paid-up term.

The next due time is in the object, so a restarted operator knows exactly what is owed; periods missed
while it was down are due at once and billed in order, one Payment each (CronJob, by contrast, starts
only the latest missed run: right for jobs, wrong for money). Nothing here talks to anything.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping

from rental_operator.api import payment as api_payment
from rental_operator.api import purifier as api_purifier
from rental_operator.api import rental as api_rental
from rental_operator.reconcilers import billing

__all__ = [
    "Charge",
    "Complete",
    "EndForNonPayment",
    "Folded",
    "InFlight",
    "Notice",
    "Retry",
    "Step",
    "Terms",
    "Wait",
    "fold",
    "lock",
    "start",
]

PaymentPhase = api_payment.PaymentPhase
# A charge that failed for good (a 4xx other than a decline) is, for the contract, a declined one: the
# period stays unpaid and the dunning schedule retries it under a new key.
_REFUSED = frozenset({PaymentPhase.DECLINED, PaymentPhase.FAILED})


@dataclasses.dataclass(frozen=True)
class Terms:
    """The settings that shape every contract (CONTRACT §3)."""

    cycle: billing.Cycle = dataclasses.field(default_factory=billing.Cycle.monthly)
    dunning: tuple[datetime.timedelta, ...] = ()
    withdrawal: datetime.timedelta = datetime.timedelta(days=14)
    history: int = 3


# --- the next step ---------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Charge:
    """Create the Payment of `period` (first attempt)."""

    period: int
    amount: int


@dataclasses.dataclass(frozen=True)
class Retry:
    """Raise the declined Payment of `period` to `attempt`: a new charge under a key of its own."""

    period: int
    attempt: int


@dataclasses.dataclass(frozen=True)
class Wait:
    """Nothing to do before `until` (a due date, a dunning retry, the term's end)."""

    until: datetime.datetime


@dataclasses.dataclass(frozen=True)
class InFlight:
    """A charge is being made; its Payment's answer moves the contract on."""

    period: int


@dataclasses.dataclass(frozen=True)
class EndForNonPayment:
    """The dunning schedule is exhausted: the contract ends, the unit is collected."""

    period: int


@dataclasses.dataclass(frozen=True)
class Complete:
    """Every period paid and the term over: the unit becomes the customer's."""


Step = Charge | Retry | Wait | InFlight | EndForNonPayment | Complete


@dataclasses.dataclass(frozen=True)
class Notice:
    """Something the customer is told about their contract (one text each, never twice)."""

    phase: str  # Charged, ChargeDeclined, TermEnding
    message: str
    period: int | None = None
    amount: int | None = None
    at: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True)
class Folded:
    billing: api_rental.Billing
    step: Step | None
    notices: tuple[Notice, ...]


# --- terms and the start ----------------------------------------------------------------------------------
def lock(spec: api_purifier.PurifierSpec, months: int) -> api_rental.Billing:
    """The terms of a new application: the Purifier's, as they are now, for the whole term."""
    return api_rental.Billing(
        monthly_fee=spec.monthly_fee,
        currency=spec.currency,
        mandatory_months=spec.mandatory_months,
        early_termination_percent=spec.early_termination_percent,
        periods_total=months,
    )


def start(
    terms: Terms, locked: api_rental.Billing, *, approved_at: datetime.datetime, amount: int, months: int
) -> api_rental.Billing:
    """Period 1 is paid: its payment time is the anchor every later due date is counted from."""
    if locked.anchor is not None:
        return locked
    total = max(locked.periods_total, months)
    return locked.model_copy(
        update={
            "anchor": approved_at,
            "periods_total": total,
            "periods_paid": 1,
            "paid_amount": amount,
            "next_charge_at": billing.period_due_at(terms.cycle, approved_at, 2) if total > 1 else None,
            "term_ends_at": billing.term_ends_at(terms.cycle, approved_at, total),
        }
    )


# --- the contract in force ----------------------------------------------------------------------------------
def fold(
    terms: Terms,
    current: api_rental.Billing,
    *,
    months: int,
    payments: Mapping[int, api_payment.Payment],
    now: datetime.datetime,
) -> Folded:
    """Fold the periods' Payments into the billing status and say what the contract needs next.

    `current` must have its anchor (period 1 paid); `payments` holds the Payments of the periods
    observed, by period. Decisions never step back: a period counted as paid stays paid whatever a
    stale view of its Payment says.
    """
    assert current.anchor is not None, "a contract in force has its anchor"
    anchor = current.anchor
    notices: list[Notice] = []
    paid, paid_amount, past_due = current.periods_paid, current.paid_amount, current.past_due
    total = max(current.periods_total, months)  # a term may be raised, never lowered
    term_ends_at = billing.term_ends_at(terms.cycle, anchor, total)

    while paid < total:
        payment = payments.get(paid + 1)
        if payment is None or payment.status.phase is not PaymentPhase.APPROVED or payment.spec.refund:
            break
        paid += 1
        paid_amount += payment.spec.amount
        if past_due is not None and past_due.period == paid:
            past_due = None
        # The message is the same for every month (the period and amount are fields of their own):
        # read models such as MyPage keep one copy of a message shared by many entries.
        notices.append(Notice("Charged", "monthly fee charged", period=paid, amount=payment.spec.amount))
        if paid == total:
            notices.append(
                Notice(
                    "TermEnding",
                    "the last period is paid; the unit becomes yours when the term ends",
                    period=paid,
                    at=term_ends_at,
                )
            )

    step: Step | None = None
    next_charge_at: datetime.datetime | None = None
    if paid < total:
        period = paid + 1
        due = billing.period_due_at(terms.cycle, anchor, period)
        next_charge_at = due
        payment = payments.get(period)
        if payment is None:
            step = Charge(period, current.monthly_fee) if now >= due else Wait(due)
        elif payment.status.phase in _REFUSED and (payment.status.attempt or 1) >= payment.spec.attempt:
            attempt = payment.spec.attempt
            next_at = billing.dunning_attempt_at(due, attempt + 1, terms.dunning)
            if past_due is None or past_due.period != period or past_due.attempts < attempt:
                reason = payment.status.last_error or "declined"
                notices.append(
                    Notice(
                        "ChargeDeclined",
                        reason,
                        period=period,
                        amount=payment.spec.amount,
                        at=next_at,
                    )
                )
            since = past_due.since if past_due is not None and past_due.period == period else now
            past_due = api_rental.PastDue(
                period=period, since=since, attempts=attempt, next_attempt_at=next_at
            )
            if next_at is None:
                step = EndForNonPayment(period)
            elif now >= next_at:
                step = Retry(period, attempt + 1)
            else:
                step = Wait(next_at)
        else:
            step = InFlight(period)  # being charged (or a retry asked for and not yet made)
    elif now >= term_ends_at:
        step = Complete()
    else:
        step = Wait(term_ends_at)

    folded = current.model_copy(
        update={
            "periods_total": total,
            "periods_paid": paid,
            "paid_amount": paid_amount,
            "past_due": past_due,
            "next_charge_at": next_charge_at,
            "term_ends_at": term_ends_at,
        }
    )
    return Folded(folded, step, tuple(notices))
