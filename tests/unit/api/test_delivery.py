"""Delivery models: what to ship where, and what the shipping system reported."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from rental_operator.api import delivery


def _spec(**changes: Any) -> dict[str, Any]:
    return {"rental": "r1", "purifier": "aquapure-300", "address": "Seoul", "customerId": "cust-1", **changes}


def _error_locations(excinfo: pytest.ExceptionInfo[pydantic.ValidationError]) -> list[str]:
    return [".".join(str(part) for part in error["loc"]) for error in excinfo.value.errors()]


def test_spec_parses() -> None:
    assert delivery.DeliverySpec.model_validate(_spec()).purifier == "aquapure-300"


@pytest.mark.parametrize(
    ("changes", "location"),
    [
        ({"purifier": "Aqua Pure"}, "purifier"),
        ({"rental": ""}, "rental"),
        ({"address": "x" * 501}, "address"),
    ],
)
def test_bad_specs_are_rejected_naming_the_field(changes: dict[str, Any], location: str) -> None:
    with pytest.raises(pydantic.ValidationError) as excinfo:
        delivery.DeliverySpec.model_validate(_spec(**changes))
    assert _error_locations(excinfo) == [location]


def test_empty_status_parses() -> None:
    status = delivery.DeliveryStatus.model_validate({})
    assert status.phase is None
    assert status.conditions == []


def test_status_phases_are_the_contracted_ones() -> None:
    assert [phase.value for phase in delivery.DeliveryPhase] == [
        "Pending",
        "Shipping",
        "Delivered",
        "Cancelled",
        "Returning",
        "Returned",
    ]
