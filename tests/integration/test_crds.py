"""The CRDs on a real API server: discovery, `kubectl explain`, the samples, and admission of bad objects.

Everything the schema promises is checked where users meet it: a bad `kubectl apply` must fail at once
with a message naming the field. No operator runs here; these are the API server's own checks.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import time
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml

from rental_operator.api import rental

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"


class Kubectl(Protocol):
    def __call__(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]: ...


def _purifier(name: str = "aquapure-300", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "rental.purifier.io/v1alpha1",
        "kind": "Purifier",
        "metadata": {"name": name},
        "spec": {"model": "AquaPure 300", "monthlyFee": 29900, "currency": "KRW", "stock": 3, **spec},
    }


def _rental(name: str = "kim-rental", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "rental.purifier.io/v1alpha1",
        "kind": "Rental",
        "metadata": {"name": name},
        "spec": {
            "purifier": "aquapure-300",
            "customer": {
                "id": "cust-1",
                "name": "김민준",
                "phone": "+821012345678",
                "address": "서울 강남구",
            },
            "months": 12,
            **spec,
        },
    }


def _payment(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "rental.purifier.io/v1alpha1",
        "kind": "Payment",
        "metadata": {"name": "kim-rental"},
        "spec": {
            "rental": "kim-rental",
            "amount": 358800,
            "currency": "KRW",
            "customerId": "cust-1",
            "idempotencyKey": "rental-0b5e1c1e",
            **spec,
        },
    }


def _delivery(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "rental.purifier.io/v1alpha1",
        "kind": "Delivery",
        "metadata": {"name": "kim-rental"},
        "spec": {
            "rental": "kim-rental",
            "purifier": "aquapure-300",
            "address": "서울 강남구",
            "customerId": "cust-1",
            **spec,
        },
    }


def _without(document: dict[str, Any], *path: str) -> dict[str, Any]:
    result = copy.deepcopy(document)
    node = result
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    return result


def _customer(**changes: Any) -> dict[str, Any]:
    customer: dict[str, Any] = copy.deepcopy(_rental()["spec"]["customer"])
    customer.update(changes)
    return customer


@dataclasses.dataclass(frozen=True)
class Bad:
    """A manifest the API server must refuse, after `setup` was accepted."""

    id: str
    manifest: dict[str, Any]
    field: str
    says: str = ""
    setup: tuple[dict[str, Any], ...] = ()
    flags: tuple[str, ...] = ()


BAD = [
    Bad(
        "rental-missing-phone",
        _without(_rental(), "spec", "customer", "phone"),
        "spec.customer.phone",
        "Required",
    ),
    Bad("rental-malformed-phone", _rental(customer=_customer(phone="010-1234-5678")), "spec.customer.phone"),
    Bad(
        "rental-phone-too-long", _rental(customer=_customer(phone="+8210123456789012")), "spec.customer.phone"
    ),
    Bad("rental-months-0", _rental(months=0), "spec.months", "greater than or equal to 1"),
    Bad("rental-months-61", _rental(months=61), "spec.months", "less than or equal to 60"),
    Bad("rental-months-not-a-number", _rental(months="twelve"), "spec.months"),
    Bad("rental-missing-purifier", _without(_rental(), "spec", "purifier"), "spec.purifier", "Required"),
    Bad("rental-missing-customer-id", _without(_rental(), "spec", "customer", "id"), "spec.customer.id"),
    Bad(
        "rental-missing-address", _without(_rental(), "spec", "customer", "address"), "spec.customer.address"
    ),
    Bad("rental-purifier-uppercase", _rental(purifier="AquaPure_300"), "spec.purifier"),
    Bad("rental-missing-spec", _without(_rental(), "spec"), "spec", "Required"),
    Bad(
        "rental-purifier-changed",
        _rental(purifier="aquapure-500"),
        "spec.purifier",
        "spec.purifier is immutable",
        setup=(_rental(),),
    ),
    Bad(
        # A paid rental moved onto another customer's MyPage, its Payment still naming the first.
        "rental-customer-id-changed",
        _rental(customer=_customer(id="customer-2")),
        "spec.customer.id",
        "spec.customer.id is immutable",
        setup=(_rental(),),
    ),
    Bad(
        # A term is agreed: shortening it would skip months owed (raising it is billed monthly).
        "rental-months-lowered",
        _rental(months=12),
        "spec.months",
        "spec.months cannot be lowered",
        setup=(_rental(months=24),),
    ),
    Bad(
        "rental-uncancelled",
        _rental(cancelled=False),
        "spec.cancelled",
        "cannot be set back to false",
        setup=(_rental(cancelled=True),),
    ),
    Bad(
        # Leaving the field out defaults it to false: that is setting it back too.
        "rental-cancelled-dropped",
        _rental(),
        "spec.cancelled",
        "cannot be set back to false",
        setup=(_rental(cancelled=True),),
    ),
    Bad(
        "rental-unknown-field-strict",
        _rental(colour="blue"),
        "spec.colour",
        "unknown field",
        flags=("--validate=strict",),
    ),
    Bad(
        "rental-unknown-customer-field-strict",
        _rental(customer=_customer(email="kim@example.com")),
        "spec.customer.email",
        "unknown field",
        flags=("--validate=strict",),
    ),
    Bad("purifier-negative-stock", _purifier(stock=-1), "spec.stock", "greater than or equal to 0"),
    Bad("purifier-fee-0", _purifier(monthlyFee=0), "spec.monthlyFee", "greater than or equal to 1"),
    Bad("purifier-lowercase-currency", _purifier(currency="krw"), "spec.currency"),
    Bad("purifier-missing-model", _without(_purifier(), "spec", "model"), "spec.model", "Required"),
    Bad("payment-amount-0", _payment(amount=0), "spec.amount"),
    Bad("payment-spec-changed", _payment(amount=1), "spec.amount", "immutable", setup=(_payment(),)),
    Bad(
        "delivery-spec-changed",
        _delivery(address="부산 해운대구"),
        "spec.address",
        "immutable",
        setup=(_delivery(),),
    ),
    Bad(
        "payment-refund-undone",
        _payment(refund=False),
        "spec.refund",
        "cannot be set back to false",
        setup=(_payment(refund=True),),
    ),
    Bad("delivery-purifier-invalid", _delivery(purifier="Aqua Pure"), "spec.purifier"),
]


def _yaml(*documents: dict[str, Any]) -> str:
    return yaml.safe_dump_all(documents, allow_unicode=True, sort_keys=False)


def test_kinds_are_listed_by_short_name_and_category(kubectl: Kubectl, namespace: str) -> None:
    kubectl("get", "pur,rent,pay,dlv", "-n", namespace)
    kubectl("apply", "-n", namespace, "-f", str(SAMPLES / "purifiers.yaml"))
    kubectl("apply", "-n", namespace, "-f", str(SAMPLES / "rentals.yaml"))
    listed = kubectl("get", "purifier-rental", "-n", namespace, "-o", "name").stdout.split()
    assert "purifier.rental.purifier.io/aquapure-300" in listed
    assert "rental.rental.purifier.io/kim-minjun-aquapure-300" in listed


def test_explain_shows_the_model_descriptions(kubectl: Kubectl) -> None:
    # The API server publishes a new CRD's OpenAPI a moment after it is Established.
    deadline = time.monotonic() + 60
    while True:
        result = kubectl("explain", "rentals.spec.customer", check=False)
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert " ".join(rental.Customer.__doc__.split()) in text  # type: ignore[union-attr]
    for name, field in rental.Customer.model_fields.items():
        assert name in text
        assert field.description
        assert " ".join(field.description.split()) in text


def test_samples_apply_cleanly(kubectl: Kubectl, namespace: str) -> None:
    for sample in sorted(SAMPLES.glob("*.yaml"), key=lambda path: path.name != "purifiers.yaml"):
        kubectl("apply", "--validate=strict", "-n", namespace, "-f", str(sample))
    rentals = json.loads(kubectl("get", "rentals", "-n", namespace, "-o", "json").stdout)["items"]
    assert len(rentals) >= 2
    # Server-side defaulting fills what the samples leave out.
    assert all(item["spec"]["cancelled"] is False for item in rentals)
    assert {item["spec"]["months"] for item in rentals} >= {12}
    purifiers = json.loads(kubectl("get", "purifiers", "-n", namespace, "-o", "json").stdout)["items"]
    assert {item["spec"]["currency"] for item in purifiers} == {"KRW"}


def test_printer_columns(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=_yaml(_purifier(), _rental()))
    header = kubectl("get", "rentals", "-n", namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "CUSTOMER", "PURIFIER", "PHASE", "PAYMENT", "DELIVERY", "AGE"]
    row = kubectl("get", "purifiers", "-n", namespace).stdout.splitlines()
    assert row[0].split() == ["NAME", "MODEL", "FEE", "STOCK", "AVAILABLE", "AGE"]
    assert "AquaPure 300" in row[1]


def test_status_subresource_is_validated(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=_yaml(_rental()))
    good = {"status": {"phase": "AwaitingPayment", "payment": {"phase": "Pending", "amount": 358800}}}
    patch = ("patch", "rental", "kim-rental", "-n", namespace, "--subresource=status", "--type=merge")
    kubectl(*patch, "-p", json.dumps(good))
    phase = kubectl("get", "rental", "kim-rental", "-n", namespace, "-o", "jsonpath={.status.phase}").stdout
    assert phase == "AwaitingPayment"
    bad = {"status": {"phase": "Shipped"}}
    result = kubectl(*patch, "-p", json.dumps(bad), check=False)
    assert result.returncode != 0
    assert "status.phase" in result.stderr


def test_cancelling_is_allowed(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=_yaml(_rental()))
    kubectl("apply", "-n", namespace, "-f", "-", input=_yaml(_rental(cancelled=True)))
    # The customer's contact details may change, and the term be raised (billed monthly); the rest of
    # the terms may not (see BAD).
    kubectl("apply", "-n", namespace, "-f", "-", input=_yaml(_rental(cancelled=True, months=24)))
    moved = _rental(cancelled=True, months=24, customer=_customer(phone="+821098765432"))
    kubectl("apply", "-n", namespace, "-f", "-", input=_yaml(moved))


@pytest.mark.parametrize("case", BAD, ids=[case.id for case in BAD])
def test_bad_manifest_is_rejected_naming_the_field(kubectl: Kubectl, namespace: str, case: Bad) -> None:
    for document in case.setup:
        kubectl("apply", "-n", namespace, "-f", "-", input=_yaml(document))
    result = kubectl(
        "apply", *case.flags, "-n", namespace, "-f", "-", input=_yaml(case.manifest), check=False
    )
    assert result.returncode != 0, result.stdout
    # The exact path, not a prefix of a longer one: "spec.months: Invalid value" or 'unknown field "spec.x"'.
    assert f"{case.field}:" in result.stderr or f'"{case.field}"' in result.stderr, result.stderr
    assert case.says in result.stderr
