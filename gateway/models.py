"""What the ledger stores and how each record looks on the wire.

`ledger` reads and writes these records; `partners` and `admin` send them with `to_json()`, which is
the single place the contract's field names (camelCase, RFC 3339 UTC timestamps) are spelled. The
contract's fields come first; the rest (timestamps, `customerId`, `carrier`) are extensions the
contract allows and the operator may show in its status.
"""

from __future__ import annotations

import dataclasses
import datetime

from . import lifecycle

__all__ = ["Message", "Payment", "Shipment", "StoredResponse", "rfc3339"]


def rfc3339(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclasses.dataclass(frozen=True)
class Payment:
    id: str
    amount: int
    currency: str
    customer_id: str
    reference: str
    status: lifecycle.PaymentStatus
    reason: str | None
    created_at: float
    refunded_at: float | None

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "id": self.id,
            "status": str(self.status),
            "amount": self.amount,
            "currency": self.currency,
            "customerId": self.customer_id,
            "reference": self.reference,
            "createdAt": rfc3339(self.created_at),
            "refundedAt": rfc3339(self.refunded_at),
        }
        if self.reason is not None:
            payload["reason"] = self.reason
        return payload


@dataclasses.dataclass(frozen=True)
class Shipment:
    id: str
    tracking_number: str
    carrier: str
    reference: str
    address: str
    item: str
    status: lifecycle.ShipmentStatus
    created_at: float
    status_changed_at: float
    delivered_at: float | None
    cancelled_at: float | None
    return_requested_at: float | None
    returned_at: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "trackingNumber": self.tracking_number,
            "status": str(self.status),
            "carrier": self.carrier,
            "reference": self.reference,
            "address": self.address,
            "item": self.item,
            "createdAt": rfc3339(self.created_at),
            "updatedAt": rfc3339(self.status_changed_at),
            "deliveredAt": rfc3339(self.delivered_at),
            "cancelledAt": rfc3339(self.cancelled_at),
            "returnRequestedAt": rfc3339(self.return_requested_at),
            "returnedAt": rfc3339(self.returned_at),
        }


@dataclasses.dataclass(frozen=True)
class Message:
    id: str
    to: str
    text: str
    reference: str
    created_at: float

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "status": "accepted",
            "to": self.to,
            "text": self.text,
            "reference": self.reference,
            "createdAt": rfc3339(self.created_at),
        }


@dataclasses.dataclass(frozen=True)
class StoredResponse:
    """The first answer to an Idempotency-Key, kept so a retry gets the very same bytes back."""

    scope: str
    key: str
    fingerprint: str
    status: int
    body: bytes
    created_at: float
