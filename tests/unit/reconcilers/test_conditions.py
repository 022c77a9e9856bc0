"""reconcilers.conditions: transition time only on a flip, observedGeneration always, sorted by type."""

from __future__ import annotations

import datetime

import pytest

from rental_operator.api import conditions as api_conditions
from rental_operator.reconcilers import conditions

T0 = datetime.datetime(2025, 6, 1, 9, 0, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(minutes=1)
T2 = T0 + datetime.timedelta(minutes=2)


def _set(
    items: list[api_conditions.Condition],
    type_: str = "Ready",
    status: bool | None = True,
    *,
    reason: str = "InStock",
    message: str = "ok",
    generation: int | None = 1,
    now: datetime.datetime = T0,
) -> list[api_conditions.Condition]:
    return conditions.set_condition(
        items, type_=type_, status=status, reason=reason, message=message, generation=generation, now=now
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [(True, "True"), (False, "False"), (None, "Unknown")],
)
def test_status_values(status: bool | None, expected: str) -> None:
    (condition,) = _set([], status=status)
    assert condition.status.value == expected
    assert condition.last_transition_time == T0


def test_new_condition_gets_everything() -> None:
    (condition,) = _set([], "Paid", False, reason="PaymentPending", message="charging", generation=3)
    assert condition.to_wire() == {
        "type": "Paid",
        "status": "False",
        "reason": "PaymentPending",
        "message": "charging",
        "observedGeneration": 3,
        "lastTransitionTime": "2025-06-01T09:00:00Z",
    }


def test_same_status_keeps_the_transition_time_even_if_reason_and_message_change() -> None:
    first = _set([], status=True, reason="InStock", message="3 free", now=T0)
    (second,) = _set(first, status=True, reason="SoldOut", message="none free", generation=2, now=T1)
    assert second.last_transition_time == T0
    assert (second.reason, second.message, second.observed_generation) == ("SoldOut", "none free", 2)


@pytest.mark.parametrize(
    ("before", "after"),
    [(True, False), (False, True), (None, True), (True, None), (False, None), (None, False)],
)
def test_a_flip_moves_the_transition_time(before: bool | None, after: bool | None) -> None:
    first = _set([], status=before, now=T0)
    (second,) = _set(first, status=after, now=T1)
    assert second.last_transition_time == T1


def test_flip_and_flip_back() -> None:
    items = _set([], status=True, now=T0)
    items = _set(items, status=False, now=T1)
    items = _set(items, status=False, now=T2)
    assert items[0].last_transition_time == T1
    items = _set(items, status=True, now=T2)
    assert items[0].last_transition_time == T2


def test_observed_generation_is_always_updated() -> None:
    items = _set([], generation=1)
    items = _set(items, generation=7, now=T1)
    assert items[0].observed_generation == 7
    assert items[0].last_transition_time == T0
    items = _set(items, generation=None, now=T2)
    assert items[0].observed_generation is None


def test_other_conditions_are_kept_untouched() -> None:
    items = _set([], "Paid", False, reason="PaymentPending", now=T0)
    paid_before = items[0]
    items = _set(items, "Ready", True, now=T1)
    assert [c.type for c in items] == ["Paid", "Ready"]
    assert items[0] == paid_before


def test_sorted_by_type_whatever_the_order_of_setting() -> None:
    one = _set(_set(_set([], "StockReserved"), "Paid"), "DeliveryStarted")
    other = _set(_set(_set([], "DeliveryStarted"), "StockReserved"), "Paid")
    assert [c.type for c in one] == ["DeliveryStarted", "Paid", "StockReserved"]
    assert one == other


def test_one_condition_per_type() -> None:
    items = _set(_set(_set([], "Ready", True), "Ready", False, now=T1), "Ready", False, now=T2)
    assert len(items) == 1


def test_setting_the_same_again_changes_nothing() -> None:
    items = _set(_set([], "Paid", False), "Ready", True)
    assert _set(items, "Ready", True, now=T2) == items


def test_input_list_is_not_modified() -> None:
    items = _set([], "Ready", True)
    snapshot = [c.model_copy() for c in items]
    _set(items, "Ready", False, now=T1)
    _set(items, "Paid", True, now=T1)
    assert items == snapshot


def test_find_is_true_and_reason_of() -> None:
    items = _set(_set([], "Paid", False, reason="PaymentPending"), "Ready", True, reason="Confirmed")
    found = conditions.find(items, "Paid")
    assert found is not None
    assert found.reason == "PaymentPending"
    assert conditions.find(items, "Refunded") is None
    assert conditions.is_true(items, "Ready") is True
    assert conditions.is_true(items, "Paid") is False
    assert conditions.is_true(items, "Refunded") is False
    assert conditions.is_true(_set([], "Ready", None), "Ready") is False
    assert conditions.reason_of(items, "Ready") == "Confirmed"
    assert conditions.reason_of(items, "Refunded") is None
