"""Rental models: the CRD schema's validation also holds in Python, with errors naming the field."""

from __future__ import annotations

import datetime
from typing import Any, cast

import kopf
import pydantic
import pytest

from rental_operator.api import conditions, payment, rental


def _rental(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "rental.purifier.io/v1alpha1",
        "kind": "Rental",
        "metadata": {"name": "r1", "namespace": "ns", "uid": "u-1", "generation": 1, "resourceVersion": "7"},
        "spec": {
            "purifier": "aquapure-300",
            "customer": {"id": "cust-1", "phone": "+821012345678", "address": "Seoul"},
        },
    }
    body["spec"].update(spec)
    return body


def _error_locations(excinfo: pytest.ExceptionInfo[pydantic.ValidationError]) -> list[str]:
    return [".".join(str(part) for part in error["loc"]) for error in excinfo.value.errors()]


def test_minimal_rental_gets_the_defaults() -> None:
    parsed = rental.Rental.from_body(_rental())
    assert parsed.spec.months == 12
    assert parsed.spec.cancelled is False
    assert parsed.metadata.name == "r1"
    assert parsed.metadata.resource_version == "7"
    assert parsed.status == rental.RentalStatus()


def test_kopf_body_parses() -> None:
    body = kopf.Body(cast(kopf.RawBody, _rental(months=24)))
    parsed = rental.Rental.from_body(body)
    assert parsed.spec.months == 24
    assert parsed.spec.customer.phone == "+821012345678"


@pytest.mark.parametrize(
    ("spec", "location"),
    [
        ({"months": 0}, "spec.months"),
        ({"months": 61}, "spec.months"),
        ({"purifier": "AquaPure_300"}, "spec.purifier"),
        ({"purifier": "x" * 254}, "spec.purifier"),
        ({"customer": {"id": "c", "phone": "01012345678", "address": "Seoul"}}, "spec.customer.phone"),
        ({"customer": {"id": "c", "phone": "+0101234567", "address": "Seoul"}}, "spec.customer.phone"),
        ({"customer": {"id": "c", "phone": "+82101234567890123", "address": "Seoul"}}, "spec.customer.phone"),
        ({"customer": {"id": "c", "address": "Seoul"}}, "spec.customer.phone"),
        ({"customer": {"phone": "+821012345678", "address": "Seoul"}}, "spec.customer.id"),
        ({"customer": {"id": "a/b", "phone": "+821012345678", "address": "Seoul"}}, "spec.customer.id"),
        ({"customer": {"id": "c", "phone": "+821012345678", "address": ""}}, "spec.customer.address"),
        ({"customer": {"id": "c", "phone": "+821012345678", "address": "x" * 501}}, "spec.customer.address"),
        (
            {"customer": {"id": "c", "name": "n" * 201, "phone": "+821012345678", "address": "Seoul"}},
            "spec.customer.name",
        ),
    ],
)
def test_bad_specs_are_rejected_naming_the_field(spec: dict[str, Any], location: str) -> None:
    with pytest.raises(pydantic.ValidationError) as excinfo:
        rental.Rental.from_body(_rental(**spec))
    assert location in _error_locations(excinfo)


def test_missing_purifier_is_rejected() -> None:
    body = _rental()
    del body["spec"]["purifier"]
    with pytest.raises(pydantic.ValidationError) as excinfo:
        rental.Rental.from_body(body)
    assert _error_locations(excinfo) == ["spec.purifier"]


def test_empty_status_parses() -> None:
    status = rental.RentalStatus.model_validate({})
    assert status.phase is None
    assert status.conditions == []
    assert status.history == []
    assert status.payment is None
    assert rental.Rental.from_body({**_rental(), "status": {}}).status == status


def test_full_status_round_trips_on_the_wire() -> None:
    at = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    status = rental.RentalStatus(
        phase=rental.RentalPhase.CONFIRMED,
        message="Paid and shipping.",
        payment=rental.PaymentSummary(
            name="r1",
            phase=payment.PaymentPhase.APPROVED,
            amount=358800,
            currency="KRW",
            transaction_id="tx-1",
        ),
        delivery=rental.DeliverySummary(name="r1", tracking_number="TRK-1"),
        observed_generation=1,
        conditions=[
            conditions.Condition(
                type=conditions.ConditionType.PAID,
                status=conditions.ConditionStatus.TRUE,
                reason=conditions.Reason.PAYMENT_APPROVED,
                last_transition_time=at,
                observed_generation=1,
            )
        ],
        history=[rental.HistoryEntry(seq=3, phase=rental.RentalPhase.CONFIRMED, at=at)],
    )
    wire = status.to_wire()
    assert wire["payment"]["transactionId"] == "tx-1"
    assert wire["delivery"] == {"name": "r1", "trackingNumber": "TRK-1"}
    assert wire["observedGeneration"] == 1
    assert wire["conditions"][0]["lastTransitionTime"] == "2026-01-02T03:04:05Z"
    assert wire["history"] == [
        {"seq": 3, "kind": "Rental", "phase": "Confirmed", "at": "2026-01-02T03:04:05Z"}
    ]
    assert rental.RentalStatus.model_validate(wire) == status


def test_history_is_bounded() -> None:
    at = "2026-01-02T03:04:05Z"
    entries = [{"phase": "Pending", "at": at}] * (rental.HISTORY_LIMIT + 1)
    with pytest.raises(pydantic.ValidationError) as excinfo:
        rental.RentalStatus.model_validate({"history": entries})
    assert _error_locations(excinfo) == ["history"]
    assert len(rental.RentalStatus.model_validate({"history": entries[1:]}).history) == rental.HISTORY_LIMIT


def test_timestamps_must_carry_a_time_zone() -> None:
    with pytest.raises(pydantic.ValidationError) as excinfo:
        rental.HistoryEntry.model_validate({"phase": "Pending", "at": "2026-01-02T03:04:05"})
    assert _error_locations(excinfo) == ["at"]


def test_unknown_phase_is_rejected() -> None:
    with pytest.raises(pydantic.ValidationError) as excinfo:
        rental.RentalStatus.model_validate({"phase": "Shipped"})
    assert _error_locations(excinfo) == ["phase"]


def test_snake_case_names_work_in_python() -> None:
    spec = rental.RentalSpec(
        purifier="aquapure-300",
        customer=rental.Customer(id="c", phone="+821012345678", address="Seoul"),
    )
    assert spec.to_wire() == {
        "purifier": "aquapure-300",
        "customer": {"id": "c", "phone": "+821012345678", "address": "Seoul"},
        "months": 12,
        "cancelled": False,
    }
