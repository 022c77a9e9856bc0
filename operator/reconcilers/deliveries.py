"""What a Delivery should do next, and its status from what the shipping system reports.

Without a stop request (`spec.cancelled`, set by the Rental on cancellation) a Delivery wants its
shipment created and then followed until delivered. With one it wants the shipment cancelled while it
is on its way, or a return once delivered, followed until returned. A shipment whose creation was never
recorded is first created under the same idempotency key (the shipping system answers a repeated key
with the shipment it already made), so a crash between the request and the status write cannot leave a
unit travelling that nobody cancels.

Every failed call is retried at the polling interval (a shipment is never given up on: an unknown
outcome is learned by repeating the call under the same key), and a moving shipment is followed at
that interval too, except right after a stop request's call, whose answer the next call acts on.

Pure functions over the models; the Delivery controller makes the calls and writes the statuses.
"""

from __future__ import annotations

import datetime
import enum
from typing import NamedTuple

from rental_operator.api import conditions as api_conditions
from rental_operator.api import delivery as api_delivery
from rental_operator.reconcilers import conditions

__all__ = ["Call", "Outcome", "call_failed", "failed", "idempotency_key", "next_call", "observed", "reported"]

Phase = api_delivery.DeliveryPhase
Type = api_conditions.ConditionType
Reason = api_conditions.Reason

_FROM_PARTNER = {
    "shipping": Phase.SHIPPING,
    "delivered": Phase.DELIVERED,
    "cancelled": Phase.CANCELLED,
    "returning": Phase.RETURNING,
    "returned": Phase.RETURNED,
}
_REASONS = {
    Phase.SHIPPING: Reason.SHIPPING,
    Phase.DELIVERED: Reason.DELIVERED,
    Phase.CANCELLED: Reason.SHIPMENT_CANCELLED,
    Phase.RETURNING: Reason.RETURNING,
    Phase.RETURNED: Reason.RETURNED,
}


class Call(enum.StrEnum):
    CREATE = "create"
    POLL = "poll"  # follow a moving shipment (shipping or returning)
    CANCEL = "cancel"
    RETURN = "return"


class Outcome(NamedTuple):
    """The status a call leads to, and after how many seconds to call again (None: as soon as seen)."""

    status: api_delivery.DeliveryStatus
    retry_after: float | None


_MOVING = frozenset({Phase.SHIPPING, Phase.RETURNING})


def idempotency_key(delivery: api_delivery.Delivery, call: Call) -> str:
    return f"delivery-{delivery.metadata.uid}-{call.value}"


def next_call(delivery: api_delivery.Delivery) -> Call | None:
    phase = delivery.status.phase
    if phase in (Phase.CANCELLED, Phase.RETURNED):
        return None
    if delivery.status.shipment_id is None:
        return Call.CREATE
    if delivery.spec.cancelled:
        if phase is Phase.SHIPPING:
            return Call.CANCEL
        if phase is Phase.DELIVERED:
            return Call.RETURN
    return Call.POLL if phase in (Phase.SHIPPING, Phase.RETURNING) else None


def observed(
    delivery: api_delivery.Delivery,
    *,
    shipment_id: str,
    tracking_number: str | None,
    partner_status: str,
    now: datetime.datetime,
    carrier: str | None = None,
) -> api_delivery.DeliveryStatus:
    """The status after the shipping system reported `partner_status` for the shipment."""
    phase = _FROM_PARTNER.get(partner_status)
    if phase is None:
        raise ValueError(f"unknown shipment status {partner_status!r} from the shipping system")
    status = delivery.status.model_copy(
        update={
            "phase": phase,
            "shipment_id": shipment_id,
            "tracking_number": tracking_number or delivery.status.tracking_number,
            "last_error": None,
        }
    )
    if phase is Phase.SHIPPING and status.shipped_at is None:
        status.shipped_at = now
    if phase is Phase.DELIVERED and status.delivered_at is None:
        status.delivered_at = now
    if carrier:
        status.carrier = carrier
    delivered = phase in (Phase.DELIVERED, Phase.RETURNING)
    for type_, value in ((Type.DELIVERED, delivered), (Type.READY, phase is Phase.DELIVERED)):
        status.conditions = conditions.set_condition(
            status.conditions,
            type_=type_,
            status=value,
            reason=_REASONS[phase],
            message=f"shipment {shipment_id} is {partner_status}",
            generation=delivery.metadata.generation,
            now=now,
        )
    return status


def failed(delivery: api_delivery.Delivery, error: str) -> api_delivery.DeliveryStatus:
    """The shipping system could not be reached or refused; the call is retried later."""
    return delivery.status.model_copy(
        update={"last_error": error, "phase": delivery.status.phase or Phase.PENDING}
    )


def reported(
    delivery: api_delivery.Delivery,
    call: Call,
    *,
    shipment_id: str,
    tracking_number: str | None,
    carrier: str | None,
    partner_status: str,
    now: datetime.datetime,
    poll_seconds: float,
) -> Outcome:
    """The shipping system answered `call`: the status, and when to look again.

    A moving shipment is polled; but the answer to a creation, cancellation or return requested while
    stopping is acted on at once (the next call, a cancel or a return, must not wait a poll interval).
    """
    status = observed(
        delivery,
        shipment_id=shipment_id,
        tracking_number=tracking_number,
        partner_status=partner_status,
        now=now,
        carrier=carrier,
    )
    settled_call = call is Call.POLL or not delivery.spec.cancelled
    return Outcome(status, poll_seconds if status.phase in _MOVING and settled_call else None)


def call_failed(delivery: api_delivery.Delivery, error: str, *, poll_seconds: float) -> Outcome:
    """Any failed call (unreachable, refused, garbled) is retried at the polling interval."""
    return Outcome(failed(delivery, error), poll_seconds)
