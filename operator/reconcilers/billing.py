"""The monthly contract's calendar and arithmetic: when each period is due, what a cancellation costs.

A rental is a contract of `months` periods (CONTRACT §1 "Billing"). Period 1 is paid at application;
its payment time is the *anchor*. Period k is due at the anchor plus k-1 calendar months, each date
counted from the anchor and cut back to the month's last day, as Stripe's billing-cycle anchors are: a
Jan 31 anchor bills Feb 28 (29), Mar 31, Apr 30. Adding one month at a time would drift (Feb 29, then
Mar 29, Apr 29...), and RFC 5545 recurrence rules skip the 31st in short months; `relativedelta` on
the anchor does exactly what billing needs. For demos and tests `RENTAL_BILLING_PERIOD` replaces the
month by a fixed duration (`Cycle.fixed`).

Everything here is a pure function of the rental's locked terms, its billing status and the time, so
a restarted operator knows from the object alone what is owed and when: nothing lives in a timer's
memory. Called by `reconcilers.rentals` (the decisions) and by MyPage (the cancellation preview).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence

from dateutil import relativedelta

from rental_operator.api import rental as api_rental

__all__ = [
    "Cycle",
    "Preview",
    "attempt_key",
    "dunning_attempt_at",
    "early_termination_fee",
    "fee_key",
    "is_withdrawable",
    "period_due_at",
    "period_key",
    "preview",
    "term_ends_at",
    "withdrawal_ends_at",
]


@dataclasses.dataclass(frozen=True)
class Cycle:
    """How billing periods are spaced: calendar months (`length` None), or a fixed duration."""

    length: datetime.timedelta | None = None

    @classmethod
    def monthly(cls) -> Cycle:
        return cls(None)

    @classmethod
    def fixed(cls, length: datetime.timedelta) -> Cycle:
        if length <= datetime.timedelta(0):
            raise ValueError("a billing period must be longer than zero")
        return cls(length)

    def after(self, anchor: datetime.datetime, periods: int) -> datetime.datetime:
        """The anchor plus `periods` whole periods, counted from the anchor (never step by step)."""
        if self.length is not None:
            return anchor + self.length * periods
        later: datetime.datetime = anchor + relativedelta.relativedelta(months=periods)
        return later


def period_due_at(cycle: Cycle, anchor: datetime.datetime, period: int) -> datetime.datetime:
    """When period `period` (1-based) is due: period 1 at the anchor, period k k-1 periods later."""
    if period < 1:
        raise ValueError(f"periods count from 1, not {period}")
    return cycle.after(anchor, period - 1)


def term_ends_at(cycle: Cycle, anchor: datetime.datetime, months: int) -> datetime.datetime:
    """The end of a term of `months` periods: the day period `months + 1` would be due."""
    return cycle.after(anchor, months)


def dunning_attempt_at(
    due: datetime.datetime, attempt: int, schedule: Sequence[datetime.timedelta]
) -> datetime.datetime | None:
    """When attempt `attempt` at a charge due at `due` is made; None once the schedule is exhausted.

    Attempt 1 is the charge itself, at its due time; attempt n (n >= 2) is the dunning schedule's
    (n-1)th retry, its delay counted from the due time (Stripe's "retry up to 8 times within 2 weeks":
    delays from the due date, not from each other, so one late retry does not push the rest).
    """
    if attempt < 1:
        raise ValueError(f"attempts count from 1, not {attempt}")
    if attempt == 1:
        return due
    if attempt - 2 >= len(schedule):
        return None
    return due + schedule[attempt - 2]


def early_termination_fee(*, monthly_fee: int, mandatory_months: int, percent: int, periods_paid: int) -> int:
    """The fee for ending inside the mandatory period: `percent` % of the fees of its unpaid months.

    Rounded down to a whole minor unit (the customer never pays a fraction the contract did not
    name); 0 once the mandatory period is paid for.
    """
    remaining = max(0, mandatory_months - periods_paid)
    return monthly_fee * remaining * percent // 100


def withdrawal_ends_at(
    delivered_at: datetime.datetime | None, window: datetime.timedelta
) -> datetime.datetime | None:
    """When the withdrawal window (distance selling's cooling-off period) closes: `window` after
    delivery; None before delivery, when a cancellation is a withdrawal whenever it comes."""
    return None if delivered_at is None else delivered_at + window


def is_withdrawable(*, ends_at: datetime.datetime | None, now: datetime.datetime) -> bool:
    """Whether a cancellation now is a withdrawal (everything refunded): before delivery (`ends_at`
    None), or before the withdrawal window closes."""
    return ends_at is None or now < ends_at


@dataclasses.dataclass(frozen=True)
class Preview:
    """What cancelling now would do, in minor units of the rental's currency."""

    ending: api_rental.Ending
    refund: int
    fee: int


def preview(
    *,
    paid_amount: int,
    monthly_fee: int,
    mandatory_months: int,
    percent: int,
    periods_paid: int,
    withdrawal_ends_at: datetime.datetime | None,
    now: datetime.datetime,
) -> Preview:
    """The cancellation the customer would get now: a full refund within the withdrawal window, else
    the early-termination fee. The one rule the decisions apply and MyPage shows."""
    if is_withdrawable(ends_at=withdrawal_ends_at, now=now):
        return Preview(api_rental.Ending.WITHDRAWAL, refund=paid_amount, fee=0)
    fee = early_termination_fee(
        monthly_fee=monthly_fee, mandatory_months=mandatory_months, percent=percent, periods_paid=periods_paid
    )
    return Preview(api_rental.Ending.TERMINATION, refund=0, fee=fee)


def period_key(rental_uid: str, period: int) -> str:
    """The idempotency key of one period's charge (a Payment's `spec.idempotencyKey`).

    Derived from the rental's uid, never stored elsewhere: the same on every retry and after any
    restart, so a period is never charged twice.
    """
    return f"rental-{rental_uid}-p{period}"


def fee_key(rental_uid: str) -> str:
    """The idempotency key of the early-termination fee: charged at most once per rental."""
    return f"rental-{rental_uid}-fee"


def attempt_key(charge_key: str, attempt: int) -> str:
    """The key one attempt at a charge is sent under.

    A declined attempt is replayed as declined under its key (the payment system stores the first
    answer, whatever it was), so a retry after a decline needs a key of its own: the attempt number
    is part of it. A lost answer is asked again under the same attempt's key.
    """
    if attempt < 1:
        raise ValueError(f"attempts count from 1, not {attempt}")
    return f"{charge_key}-a{attempt}"
