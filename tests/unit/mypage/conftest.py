"""Objects as the API server sends them (Rental and Purifier bodies), for the MyPage unit tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

RentalFactory = Callable[..., dict[str, Any]]
PurifierFactory = Callable[..., dict[str, Any]]

HISTORY = (
    ("Rental", "Pending", "2026-11-01T09:00:00Z", "application received"),
    ("Rental", "AwaitingPayment", "2026-11-01T09:00:02Z", "a unit is reserved; taking payment"),
    ("Rental", "Confirmed", "2026-11-01T09:00:03Z", "paid; delivery started"),
    ("Delivery", "Shipping", "2026-11-01T09:00:03Z", "delivery shipping"),
    ("Delivery", "Delivered", "2026-11-01T10:30:00Z", "delivery delivered"),
)


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
) -> dict[str, Any]:
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
