"""A typical object of each kind: the preset dictionaries the stores compress against.

zlib with a preset dictionary can refer back into it from the first byte of an object, so what every
object of a kind repeats (keys, the finalizer, condition types and reasons, the saga's history
messages) costs a few bytes instead of being spelt out once per object. Measured on a delivered
Rental without managedFields: 2,005 bytes of JSON, 759 deflated alone, about 250 against this
dictionary; with 10,000 rentals present the stores hold 30,000 such objects. The values are only
typical; anything an object does not share with them is compressed as before.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from rental_operator.api import delivery, payment, purifier, rental

__all__ = ["DELIVERY", "PAYMENT", "PURIFIER", "RENTAL"]

_UID: Final = "00000000-0000-0000-0000-000000000000"
_AT: Final = "2026-01-01T00:00:00Z"


def _metadata(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "creationTimestamp": _AT,
        **extra,
        "generation": 1,
        "name": name,
        "namespace": "default",
        "resourceVersion": "1000",
        "uid": _UID,
    }


def _condition(type_: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "lastTransitionTime": _AT,
        "message": message,
        "observedGeneration": 1,
        "reason": reason,
        "status": "True",
        "type": type_,
    }


def _entry(seq: int, kind: str, phase: str, message: str) -> dict[str, Any]:
    return {"at": _AT, "kind": kind, "message": message, "phase": phase, "seq": seq}


def _owned() -> dict[str, Any]:
    owner = {
        "apiVersion": rental.RESOURCE.api_version,
        "blockOwnerDeletion": True,
        "controller": True,
        "kind": rental.RESOURCE.kind,
        "name": "r1",
        "uid": _UID,
    }
    return _metadata("r1", labels={"rental.purifier.io/rental": "r1"}, ownerReferences=[owner])


_RENTAL: Final = {
    "apiVersion": rental.RESOURCE.api_version,
    "kind": rental.RESOURCE.kind,
    "metadata": _metadata("r1", finalizers=["rental.purifier.io/compensation"]),
    "spec": {
        "cancelled": False,
        "customer": {"address": "Seoul", "id": "cust-1", "name": "Kim", "phone": "+821012345678"},
        "months": 12,
        "purifier": "aqua",
    },
    "status": {
        "conditions": [
            _condition("DeliveryStarted", "Delivered", "tracking number RX0000000000"),
            _condition("Paid", "PaymentApproved", "charged; transaction pay_000000000000000000000000"),
            _condition("Ready", "Confirmed", "paid; the rental is in force"),
            _condition("StockReserved", "Reserved", "one unit of aqua is held for this rental"),
        ],
        "delivery": {"name": "r1", "phase": "Delivered", "trackingNumber": "RX0000000000"},
        "history": [
            _entry(1, "Rental", "Pending", "application received"),
            _entry(2, "Rental", "AwaitingPayment", "a unit is reserved; taking payment"),
            _entry(3, "Rental", "Confirmed", "paid; delivery started"),
            _entry(4, "Delivery", "Shipping", "delivery shipping"),
            _entry(5, "Delivery", "Delivered", "delivery delivered"),
        ],
        "message": "paid; delivery started",
        "notifiedSeq": 5,
        "observedGeneration": 1,
        "payment": {
            "amount": 360000,
            "currency": "KRW",
            "name": "r1",
            "phase": "Approved",
            "transactionId": "pay_000000000000000000000000",
        },
        "phase": "Confirmed",
    },
}

_PAYMENT: Final = {
    "apiVersion": payment.RESOURCE.api_version,
    "kind": payment.RESOURCE.kind,
    "metadata": _owned(),
    "spec": {
        "amount": 360000,
        "currency": "KRW",
        "customerId": "cust-1",
        "idempotencyKey": f"rental-{_UID}",
        "refund": False,
        "rental": "r1",
    },
    "status": {
        "approvedAt": _AT,
        "attempts": 1,
        "conditions": [
            _condition("Paid", "PaymentApproved", "transaction pay_000000000000000000000000"),
            _condition("Ready", "PaymentApproved", "approved"),
        ],
        "phase": "Approved",
        "transactionId": "pay_000000000000000000000000",
    },
}

_DELIVERY: Final = {
    "apiVersion": delivery.RESOURCE.api_version,
    "kind": delivery.RESOURCE.kind,
    "metadata": _owned(),
    "spec": {
        "address": "Seoul",
        "cancelled": False,
        "customerId": "cust-1",
        "purifier": "aqua",
        "rental": "r1",
    },
    "status": {
        "carrier": "reference-express",
        "conditions": [
            _condition("Delivered", "Delivered", "shipment shp_000000000000000000000000 is delivered"),
            _condition("Ready", "Delivered", "shipment shp_000000000000000000000000 is delivered"),
        ],
        "deliveredAt": _AT,
        "phase": "Delivered",
        "shipmentId": "shp_000000000000000000000000",
        "shippedAt": _AT,
        "trackingNumber": "RX0000000000",
    },
}

_PURIFIER: Final = {
    "apiVersion": purifier.RESOURCE.api_version,
    "kind": purifier.RESOURCE.kind,
    "metadata": _metadata("aqua"),
    "spec": {"currency": "KRW", "model": "AquaPure", "monthlyFee": 30000, "stock": 5},
    "status": {
        "allocated": 1,
        "available": 4,
        "conditions": [_condition("Ready", "InStock", "4 of 5 units free to rent")],
        "observedGeneration": 1,
        "pending": [{"operation": "Reserve", "rental": "r1", "uid": _UID}],
    },
}

RENTAL: Final = orjson.dumps(_RENTAL)
PAYMENT: Final = orjson.dumps(_PAYMENT)
DELIVERY: Final = orjson.dumps(_DELIVERY)
PURIFIER: Final = orjson.dumps(_PURIFIER)
