"""Objects as the API server sends them (Rental and Purifier bodies), for the MyPage unit tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

RentalFactory = Callable[..., dict[str, Any]]
PurifierFactory = Callable[..., dict[str, Any]]
BillingFactory = Callable[..., dict[str, Any]]

HISTORY = (
    ("Rental", "Pending", "2026-11-01T09:00:00Z", "application received"),
    ("Rental", "AwaitingPayment", "2026-11-01T09:00:02Z", "a unit is reserved; taking payment"),
    ("Rental", "Confirmed", "2026-11-01T09:00:03Z", "paid; delivery started"),
    ("Delivery", "Shipping", "2026-11-01T09:00:03Z", "delivery shipping"),
    ("Delivery", "Delivered", "2026-11-01T10:30:00Z", "delivery delivered"),
)


# A contract three months into a 36-month term (12 of them mandatory), delivered on 2026-11-01 and
# so withdrawable until 2026-11-15; the next charge is due on 2027-02-01.
CONTRACT: dict[str, Any] = {
    "monthlyFee": 30_000,
    "currency": "KRW",
    "mandatoryMonths": 12,
    "earlyTerminationPercent": 10,
    "periodsTotal": 36,
    "periodsPaid": 3,
    "paidAmount": 90_000,
    "refundedAmount": 0,
    "anchor": "2026-11-01T09:00:03Z",
    "nextChargeAt": "2027-02-01T09:00:03Z",
    "termEndsAt": "2029-11-01T09:00:03Z",
    "withdrawalEndsAt": "2026-11-15T10:30:00Z",
}
# The receipts of months 2 and 3, as the operator appends them to the history.
RECEIPTS = (
    {"kind": "Billing", "phase": "Charged", "at": "2026-12-01T09:00:05Z", "period": 2, "amount": 30_000},
    {"kind": "Billing", "phase": "Charged", "at": "2027-01-01T09:00:04Z", "period": 3, "amount": 30_000},
)


def make_billing(**changes: Any) -> dict[str, Any]:
    """`CONTRACT` with `changes` (camelCase keys; None removes a field)."""
    billing = {**CONTRACT, **changes}
    return {key: value for key, value in billing.items() if value is not None}


def make_rental(
    name: str = "r1",
    *,
    namespace: str = "shop",
    customer: str = "cust-1",
    purifier: str = "aqua-300",
    version: int = 10,
    phase: str | None = "Confirmed",
    message: str = "paid; delivery started",
    history: int = 5,
    tracking: str | None = "TRK-1",
    amount: int | None = 360_000,
    currency: str = "KRW",
    created: str = "2026-11-01T09:00:00Z",
    billing: dict[str, Any] | None = None,
    receipts: int = 0,
) -> dict[str, Any]:
    """A Rental body; `billing` is its `status.billing`, `receipts` how many of `RECEIPTS` follow the
    history (numbered on from it)."""
    status: dict[str, Any] = {}
    if phase is not None:
        status = {
            "phase": phase,
            "message": message,
            "payment": {"name": name, "phase": "Approved", "amount": amount, "currency": currency},
            "delivery": {"name": name, "phase": "Delivered", "trackingNumber": tracking},
            "history": [
                {"seq": index + 1, "kind": kind, "phase": entry, "at": at, "message": text}
                for index, (kind, entry, at, text) in enumerate(HISTORY[:history])
            ],
        }
        status["history"] += [
            {"seq": history + index + 1, "message": f"period {receipt['period']} of 36 paid", **receipt}
            for index, receipt in enumerate(RECEIPTS[:receipts])
        ]
        if billing is not None:
            status["billing"] = billing
    return {
        "apiVersion": "rental.purifier.io/v1alpha1",
        "kind": "Rental",
        "metadata": {
            "namespace": namespace,
            "name": name,
            "resourceVersion": str(version),
            "creationTimestamp": created,
            "uid": f"uid-{name}",
        },
        "spec": {
            "purifier": purifier,
            "months": 12,
            "customer": {"id": customer, "name": "Kim", "phone": "+821012345678", "address": "Seoul"},
        },
        "status": status,
    }


def make_purifier(
    name: str = "aqua-300", *, namespace: str = "shop", model: str = "AquaPure 300", version: int = 5
) -> dict[str, Any]:
    return {
        "apiVersion": "rental.purifier.io/v1alpha1",
        "kind": "Purifier",
        "metadata": {"namespace": namespace, "name": name, "resourceVersion": str(version)},
        "spec": {"model": model, "monthlyFee": 30_000, "currency": "KRW", "stock": 3},
    }


@pytest.fixture
def rental_body() -> RentalFactory:
    return make_rental


@pytest.fixture
def purifier_body() -> PurifierFactory:
    return make_purifier


@pytest.fixture
def billing_body() -> BillingFactory:
    return make_billing
