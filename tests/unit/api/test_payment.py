"""Payment models: the charge request and the payment system's answers."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from rental_operator.api import payment


def _spec(**changes: Any) -> dict[str, Any]:
    spec = {
        "rental": "r1",
        "amount": 358800,
        "currency": "KRW",
        "customerId": "cust-1",
        "idempotencyKey": "rental-u-1",
    }
    return {**spec, **changes}


def _error_locations(excinfo: pytest.ExceptionInfo[pydantic.ValidationError]) -> list[str]:
    return [".".join(str(part) for part in error["loc"]) for error in excinfo.value.errors()]


def test_spec_parses() -> None:
    spec = payment.PaymentSpec.model_validate(_spec())
    assert spec.idempotency_key == "rental-u-1"
    assert spec.customer_id == "cust-1"


@pytest.mark.parametrize(
    ("changes", "location"),
    [
        ({"amount": 0}, "amount"),
        ({"currency": "won"}, "currency"),
        ({"rental": "R1"}, "rental"),
        ({"idempotencyKey": ""}, "idempotencyKey"),
        ({"customerId": ""}, "customerId"),
    ],
)
def test_bad_specs_are_rejected_naming_the_field(changes: dict[str, Any], location: str) -> None:
    with pytest.raises(pydantic.ValidationError) as excinfo:
        payment.PaymentSpec.model_validate(_spec(**changes))
    assert _error_locations(excinfo) == [location]


def test_empty_status_parses() -> None:
    status = payment.PaymentStatus.model_validate({})
    assert status.phase is None
    assert status.attempts == 0
    assert status.conditions == []


def test_status_phases_are_the_contracted_ones() -> None:
    assert [phase.value for phase in payment.PaymentPhase] == [
        "Pending",
        "Approved",
        "Declined",
        "Deferred",
        "Refunding",
        "Refunded",
        "Failed",
    ]
    status = payment.PaymentStatus.model_validate(
        {
            "phase": "Approved",
            "transactionId": "pay_1",
            "attempts": 2,
            "approvedAt": "2026-01-02T03:04:05+09:00",
        }
    )
    assert status.to_wire()["approvedAt"] == "2026-01-02T03:04:05+09:00"
