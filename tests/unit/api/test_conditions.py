"""Condition vocabulary: every documented type and reason is one the API server will accept."""

from __future__ import annotations

import re

import pydantic
import pytest

from rental_operator.api import conditions


def _pattern(field: str) -> re.Pattern[str]:
    pattern = conditions.Condition.model_fields[field].metadata
    (constraint,) = [item for item in pattern if hasattr(item, "pattern")]
    return re.compile(constraint.pattern)


@pytest.mark.parametrize("reason", list(conditions.Reason))
def test_reasons_match_the_kubernetes_reason_pattern(reason: conditions.Reason) -> None:
    assert _pattern("reason").fullmatch(reason)


@pytest.mark.parametrize("type_", list(conditions.ConditionType))
def test_types_match_the_kubernetes_type_pattern(type_: conditions.ConditionType) -> None:
    assert _pattern("type").fullmatch(type_)


def test_contracted_rental_condition_types_exist() -> None:
    assert {"StockReserved", "Paid", "DeliveryStarted", "Ready"} <= set(conditions.ConditionType)


def test_condition_needs_type_status_reason_and_time() -> None:
    with pytest.raises(pydantic.ValidationError) as excinfo:
        conditions.Condition.model_validate({})
    missing = {error["loc"][0] for error in excinfo.value.errors()}
    assert missing == {"type", "status", "reason", "lastTransitionTime"}


def test_condition_status_is_true_false_or_unknown() -> None:
    with pytest.raises(pydantic.ValidationError):
        conditions.Condition.model_validate(
            {
                "type": "Ready",
                "status": "true",
                "reason": "InStock",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        )
