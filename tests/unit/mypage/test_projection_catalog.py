"""mypage.projection keeps the catalog for the web app: a Purifier's terms and units free, range-checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rental_operator.mypage import projection

PurifierFactory = Callable[..., dict[str, Any]]


def test_a_purifier_keeps_its_terms_and_availability(purifier_body: PurifierFactory) -> None:
    view = projection.Projection()
    body = purifier_body()
    body["spec"].update(
        displayName="AquaPure", mandatoryMonths=36, earlyTerminationPercent=15, currency="USD"
    )
    body["status"] = {"available": 4, "allocated": 1}
    view.apply("Purifier", None, body)
    assert view.purifier("shop", "aqua-300") == projection.Purifier(
        "shop", "aqua-300", "AquaPure 300", "AquaPure", 30_000, "USD", 36, 15, 4
    )
    assert view.purifier("shop", "other") is None


def test_defaults_are_the_schemas(purifier_body: PurifierFactory) -> None:
    view = projection.Projection()
    body = purifier_body()
    del body["spec"]["currency"], body["spec"]["monthlyFee"]
    view.apply("Purifier", None, body)
    entry = view.purifier("shop", "aqua-300")
    assert entry is not None
    assert (entry.monthly_fee, entry.currency, entry.mandatory_months, entry.early_termination_percent) == (
        None,
        "KRW",
        0,
        10,
    )
    assert entry.available == 0  # not counted by the operator yet


def test_the_catalog_is_sorted_and_follows_updates_and_deletions(purifier_body: PurifierFactory) -> None:
    view = projection.Projection()
    view.apply("Purifier", None, purifier_body("b", version=1))
    view.apply("Purifier", None, purifier_body("a", version=2))
    newer = purifier_body("b", version=3)
    newer["status"] = {"available": 1}
    view.apply("Purifier", "MODIFIED", newer)
    view.apply("Purifier", "MODIFIED", purifier_body("b", version=2))  # older: ignored
    assert [(p.name, p.available) for p in view.purifiers()] == [("a", 0), ("b", 1)]
    view.apply("Purifier", "DELETED", purifier_body("a", version=4))
    assert [p.name for p in view.purifiers()] == ["b"]


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("spec", "monthlyFee", 2**53),
        ("spec", "mandatoryMonths", 61),
        ("spec", "earlyTerminationPercent", 101),
        ("spec", "mandatoryMonths", -1),
        ("status", "available", 2**31),
        ("status", "available", -1),
    ],
)
def test_out_of_range_numbers_skip_the_purifier(
    purifier_body: PurifierFactory, section: str, field: str, value: int
) -> None:
    view = projection.Projection()
    body = purifier_body()
    body.setdefault(section, {})[field] = value
    assert view.apply("Purifier", None, body) is False
    assert view.purifiers() == []
    fine = purifier_body("fine")
    fine["spec"].update(monthlyFee=2**53 - 1, mandatoryMonths=60, earlyTerminationPercent=100)
    assert view.apply("Purifier", None, fine) is True


def test_a_rental_is_found_by_name_whoever_it_belongs_to(rental_body: Callable[..., dict[str, Any]]) -> None:
    view = projection.Projection()
    view.apply("Rental", None, rental_body("r1", customer="cust-2"))
    found = view.rental("shop", "r1")
    assert found is not None and found.customer == "cust-2"
    assert view.rental("shop", "r2") is None
    assert view.rental("elsewhere", "r1") is None
