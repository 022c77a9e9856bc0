"""The contract's calendar and arithmetic (reconcilers.billing): due dates, dunning, fees, previews."""

from __future__ import annotations

import datetime

import pytest

from rental_operator.api import rental as api_rental
from rental_operator.reconcilers import billing

UTC = datetime.UTC
KST = datetime.timezone(datetime.timedelta(hours=9))
DAY = datetime.timedelta(days=1)
MONTHLY = billing.Cycle.monthly()


def _at(year: int, month: int, day: int, hour: int = 10, tz: datetime.tzinfo = UTC) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, 30, tzinfo=tz)


def test_a_month_end_anchor_bills_each_months_last_day_counted_from_the_anchor() -> None:
    anchor = _at(2027, 1, 31)
    due = [billing.period_due_at(MONTHLY, anchor, k).date() for k in range(1, 6)]
    assert due == [
        datetime.date(2027, 1, 31),
        datetime.date(2027, 2, 28),
        datetime.date(2027, 3, 31),  # not Mar 28: counted from the anchor, never month by month
        datetime.date(2027, 4, 30),
        datetime.date(2027, 5, 31),
    ]


def test_a_leap_year_february_bills_the_29th() -> None:
    assert billing.period_due_at(MONTHLY, _at(2028, 1, 30), 2).date() == datetime.date(2028, 2, 29)


def test_a_feb_29_anchor_does_not_drift_to_the_29th_of_every_month() -> None:
    anchor = _at(2028, 2, 29)
    assert billing.period_due_at(MONTHLY, anchor, 2).date() == datetime.date(2028, 3, 29)
    assert billing.period_due_at(MONTHLY, anchor, 13).date() == datetime.date(2029, 2, 28)
    assert billing.period_due_at(MONTHLY, anchor, 49).date() == datetime.date(2032, 2, 29)


def test_the_time_of_day_and_the_zone_are_kept() -> None:
    anchor = _at(2027, 3, 15, hour=23, tz=KST)
    due = billing.period_due_at(MONTHLY, anchor, 3)
    assert due == datetime.datetime(2027, 5, 15, 23, 30, tzinfo=KST)


def test_period_1_is_due_at_the_anchor_and_periods_count_from_1() -> None:
    anchor = _at(2027, 6, 1)
    assert billing.period_due_at(MONTHLY, anchor, 1) == anchor
    with pytest.raises(ValueError, match="from 1"):
        billing.period_due_at(MONTHLY, anchor, 0)


def test_the_term_ends_a_whole_term_after_the_anchor() -> None:
    assert billing.term_ends_at(MONTHLY, _at(2027, 1, 31), 36).date() == datetime.date(2030, 1, 31)
    assert billing.term_ends_at(MONTHLY, _at(2027, 1, 31), 1).date() == datetime.date(2027, 2, 28)


def test_a_fixed_cycle_spaces_periods_evenly() -> None:
    cycle = billing.Cycle.fixed(datetime.timedelta(seconds=30))
    anchor = _at(2027, 1, 31)
    assert billing.period_due_at(cycle, anchor, 4) == anchor + datetime.timedelta(seconds=90)
    assert billing.term_ends_at(cycle, anchor, 12) == anchor + datetime.timedelta(minutes=6)
    with pytest.raises(ValueError, match="longer than zero"):
        billing.Cycle.fixed(datetime.timedelta(0))


def test_dunning_delays_count_from_the_due_time_and_run_out() -> None:
    due = _at(2027, 2, 28)
    schedule = [DAY, 3 * DAY, 5 * DAY]
    assert billing.dunning_attempt_at(due, 1, schedule) == due
    assert billing.dunning_attempt_at(due, 2, schedule) == due + DAY
    assert billing.dunning_attempt_at(due, 4, schedule) == due + 5 * DAY
    assert billing.dunning_attempt_at(due, 5, schedule) is None
    assert billing.dunning_attempt_at(due, 2, []) is None


@pytest.mark.parametrize(
    ("mandatory", "paid", "percent", "fee"),
    [
        (36, 12, 10, 33_000 * 24 * 10 // 100),  # 79,200 KRW
        (36, 36, 10, 0),  # the mandatory period is paid for
        (36, 40, 10, 0),
        (0, 1, 10, 0),  # no mandatory period
        (36, 35, 0, 0),
        (3, 1, 33, 21_780),  # 33% of 66,000: exact
    ],
)
def test_the_early_termination_fee(mandatory: int, paid: int, percent: int, fee: int) -> None:
    assert (
        billing.early_termination_fee(
            monthly_fee=33_000, mandatory_months=mandatory, percent=percent, periods_paid=paid
        )
        == fee
    )


def test_the_fee_is_rounded_down_to_a_whole_minor_unit() -> None:
    # 7% of 3 x 999 = 209.79: the customer pays 209.
    assert (
        billing.early_termination_fee(monthly_fee=999, mandatory_months=4, percent=7, periods_paid=1) == 209
    )


def test_withdrawal_before_delivery_and_inside_the_window_only() -> None:
    delivered = _at(2027, 3, 1)
    ends = billing.withdrawal_ends_at(delivered, 14 * DAY)
    assert ends == delivered + 14 * DAY
    assert billing.withdrawal_ends_at(None, 14 * DAY) is None
    assert billing.is_withdrawable(ends_at=None, now=delivered + 400 * DAY)  # not delivered yet
    assert billing.is_withdrawable(ends_at=ends, now=delivered + 13 * DAY)
    assert not billing.is_withdrawable(ends_at=ends, now=delivered + 14 * DAY)


def test_the_preview_is_a_full_refund_within_the_window_else_the_fee() -> None:
    terms = {"paid_amount": 66_000, "monthly_fee": 33_000, "mandatory_months": 36, "percent": 10}
    ends = _at(2027, 3, 15)
    early = billing.preview(**terms, periods_paid=2, withdrawal_ends_at=ends, now=ends - DAY)
    assert early == billing.Preview(api_rental.Ending.WITHDRAWAL, refund=66_000, fee=0)
    late = billing.preview(**terms, periods_paid=2, withdrawal_ends_at=ends, now=ends + 16 * DAY)
    assert late == billing.Preview(api_rental.Ending.TERMINATION, refund=0, fee=33_000 * 34 // 10)
    before_delivery = billing.preview(**terms, periods_paid=2, withdrawal_ends_at=None, now=ends + 99 * DAY)
    assert before_delivery.ending is api_rental.Ending.WITHDRAWAL


def test_keys_are_derived_per_period_and_attempt() -> None:
    key = billing.period_key("uid-1", 7)
    assert key == "rental-uid-1-p7"
    assert billing.attempt_key(key, 1) == "rental-uid-1-p7-a1"
    assert billing.attempt_key(key, 2) != billing.attempt_key(key, 1)
    assert billing.fee_key("uid-1") == "rental-uid-1-fee"
    assert len({billing.period_key("u", k) for k in range(1, 61)}) == 60
    with pytest.raises(ValueError, match="from 1"):
        billing.attempt_key(key, 0)
