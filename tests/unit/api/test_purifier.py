"""Purifier models: fee, stock and currency are checked as the CRD schema checks them."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from rental_operator.api import purifier


def _spec(**changes: Any) -> dict[str, Any]:
    return {"model": "AquaPure 300", "monthlyFee": 29900, "stock": 3, **changes}


def _error_locations(excinfo: pytest.ExceptionInfo[pydantic.ValidationError]) -> list[str]:
    return [".".join(str(part) for part in error["loc"]) for error in excinfo.value.errors()]


def test_currency_defaults_to_krw() -> None:
    spec = purifier.PurifierSpec.model_validate(_spec())
    assert spec.currency == "KRW"
    assert spec.display_name is None


@pytest.mark.parametrize(
    ("changes", "location"),
    [
        ({"monthlyFee": 0}, "monthlyFee"),
        ({"monthlyFee": -100}, "monthlyFee"),
        ({"monthlyFee": purifier.MAX_MONTHLY_FEE + 1}, "monthlyFee"),
        ({"stock": -1}, "stock"),
        ({"currency": "krw"}, "currency"),
        ({"currency": "KRWX"}, "currency"),
        ({"model": ""}, "model"),
        ({"model": "m" * 201}, "model"),
    ],
)
def test_bad_specs_are_rejected_naming_the_field(changes: dict[str, Any], location: str) -> None:
    with pytest.raises(pydantic.ValidationError) as excinfo:
        purifier.PurifierSpec.model_validate(_spec(**changes))
    assert _error_locations(excinfo) == [location]


def test_stock_zero_is_allowed() -> None:
    assert purifier.PurifierSpec.model_validate(_spec(stock=0)).stock == 0


def test_empty_status_parses() -> None:
    status = purifier.PurifierStatus.model_validate({})
    assert (status.available, status.allocated, status.pending, status.conditions) == (0, 0, [], [])


def test_pending_entries_name_a_rental_its_uid_and_the_operation() -> None:
    entry = {"rental": "kim-aquapure-300", "uid": "3f1c", "operation": "Reserve"}
    status = purifier.PurifierStatus.model_validate({"allocated": 1, "pending": [entry]})
    assert status.pending[0].operation is purifier.StockOperation.RESERVE
    assert status.to_wire()["pending"] == [entry]
    for field, bad in (("rental", "Not A Name"), ("uid", ""), ("operation", "Borrow")):
        with pytest.raises(pydantic.ValidationError) as excinfo:
            purifier.PurifierStatus.model_validate({"pending": [{**entry, field: bad}]})
        assert _error_locations(excinfo) == [f"pending.0.{field}"]


def test_a_status_written_before_the_journal_still_parses() -> None:
    """Purifiers written by earlier versions list every holder; the count is what carries over."""
    status = purifier.PurifierStatus.model_validate({"allocated": 2, "holders": ["a", "b"]})
    assert (status.allocated, status.pending) == (2, [])


def test_whole_object_from_body() -> None:
    parsed = purifier.Purifier.from_body(
        {
            "apiVersion": "rental.purifier.io/v1alpha1",
            "kind": "Purifier",
            "metadata": {"name": "p"},
            "spec": _spec(),
        }
    )
    assert parsed.spec.monthly_fee == 29900
    with pytest.raises(pydantic.ValidationError) as excinfo:
        purifier.Purifier.from_body({"kind": "Rental", "metadata": {"name": "p"}, "spec": _spec()})
    assert _error_locations(excinfo) == ["kind"]
