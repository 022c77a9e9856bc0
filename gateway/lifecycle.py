"""The statuses of payments and shipments and the only transitions between them.

CONTRACT §2 names the statuses; the rules here are the ones a real provider enforces and the operator
must cope with: a declined payment cannot be refunded, a delivered shipment cannot be cancelled (it
has to come back as a return), a shipment that was never delivered cannot be returned. Repeating a
transition that already happened is not an error (a second refund or cancel answers with the current
state), so a client that lost the first answer can simply ask again. `ledger` applies these functions
inside its transactions; they are pure so the rules are tested on their own.
"""

from __future__ import annotations

import enum

__all__ = [
    "AUTO_ADVANCING",
    "PaymentStatus",
    "ShipmentStatus",
    "TransitionError",
    "advance",
    "cancel",
    "refund",
    "request_return",
]


class PaymentStatus(enum.StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    REFUNDED = "refunded"


class ShipmentStatus(enum.StrEnum):
    SHIPPING = "shipping"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    RETURNING = "returning"
    RETURNED = "returned"


class TransitionError(Exception):
    """The transition is not allowed from the current status; the API answers 409."""


# The carrier moves these on its own (after `--auto-deliver-seconds`, or `/admin/.../deliver`).
AUTO_ADVANCING: dict[ShipmentStatus, ShipmentStatus] = {
    ShipmentStatus.SHIPPING: ShipmentStatus.DELIVERED,
    ShipmentStatus.RETURNING: ShipmentStatus.RETURNED,
}


def refund(status: PaymentStatus) -> PaymentStatus:
    if status is PaymentStatus.DECLINED:
        raise TransitionError("a declined payment cannot be refunded")
    return PaymentStatus.REFUNDED


def cancel(status: ShipmentStatus) -> ShipmentStatus:
    if status in (ShipmentStatus.SHIPPING, ShipmentStatus.CANCELLED):
        return ShipmentStatus.CANCELLED
    if status is ShipmentStatus.DELIVERED:
        raise TransitionError("a delivered shipment cannot be cancelled; request a return instead")
    raise TransitionError(f"a {status} shipment cannot be cancelled")


def request_return(status: ShipmentStatus) -> ShipmentStatus:
    if status is ShipmentStatus.DELIVERED:
        return ShipmentStatus.RETURNING
    if status in (ShipmentStatus.RETURNING, ShipmentStatus.RETURNED):
        return status
    raise TransitionError(f"only a delivered shipment can be returned; this one is {status}")


def advance(status: ShipmentStatus) -> ShipmentStatus:
    """The carrier's next step: shipping -> delivered, returning -> returned."""
    try:
        return AUTO_ADVANCING[status]
    except KeyError:
        raise TransitionError(f"a {status} shipment has no next step") from None
