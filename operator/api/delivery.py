"""The Delivery kind: the shipment of one unit to a customer, created when a Rental is confirmed.

Owned by its Rental. The spec is what to ship where and never changes (the API server refuses any
edit); the status follows the shipping system: Shipping -> Delivered, or Cancelled before delivery, or
Returning -> Returned when a delivered rental is cancelled.
"""

from __future__ import annotations

import enum
from typing import Final, Literal

import pydantic

from rental_operator.api import conditions, meta

__all__ = [
    "RESOURCE",
    "Delivery",
    "DeliveryPhase",
    "DeliverySpec",
    "DeliveryStatus",
]

# Inside a class body a field named `conditions` shadows the module; annotations use this alias.
_Conditions = conditions.ConditionList

RESOURCE: Final = meta.Resource(
    kind="Delivery",
    plural="deliveries",
    singular="delivery",
    short_names=("dlv",),
    columns=(
        meta.PrinterColumn("Rental", ".spec.rental", "string", "Rental this delivery is for."),
        meta.PrinterColumn("Purifier", ".spec.purifier", "string", "Purifier shipped.", priority=1),
        meta.PrinterColumn("Phase", ".status.phase", "string", "Where the shipment stands."),
        meta.PrinterColumn("Tracking", ".status.trackingNumber", "string", "Carrier's tracking number."),
        meta.PrinterColumn("Carrier", ".status.carrier", "string", "Carrier of the shipment.", priority=1),
        meta.AGE_COLUMN,
    ),
)


class DeliveryPhase(enum.StrEnum):
    """Where a shipment stands, for humans (logic reads conditions)."""

    # Created; the shipping system has not accepted the shipment yet.
    PENDING = "Pending"
    # The carrier has the unit and it is on its way.
    SHIPPING = "Shipping"
    # The unit reached the customer.
    DELIVERED = "Delivered"
    # The shipment was cancelled before delivery.
    CANCELLED = "Cancelled"
    # The customer is sending the delivered unit back.
    RETURNING = "Returning"
    # The unit is back; it returns to stock.
    RETURNED = "Returned"


_WHY = "a Delivery is one shipment; create a new one instead"


class DeliverySpec(meta.WireModel):
    """What to ship where, fixed when the Delivery is created."""

    model_config = pydantic.ConfigDict(json_schema_extra=meta.one_way_flag("cancelled"))

    rental: meta.DnsSubdomain = pydantic.Field(
        json_schema_extra=meta.immutable("spec.rental", _WHY),
        description="Name of the Rental (same namespace) being delivered.",
    )
    purifier: meta.DnsSubdomain = pydantic.Field(
        json_schema_extra=meta.immutable("spec.purifier", _WHY),
        description="Name of the Purifier (same namespace) shipped.",
    )
    address: str = pydantic.Field(
        json_schema_extra=meta.immutable("spec.address", _WHY),
        min_length=1,
        max_length=500,
        description="Where to deliver the unit.",
    )
    customer_id: meta.CustomerId = pydantic.Field(
        json_schema_extra=meta.immutable("spec.customerId", _WHY),
        description="Customer receiving the unit (the Rental's spec.customer.id).",
    )
    cancelled: bool = pydantic.Field(
        default=False,
        description=(
            "Set by the owning Rental when the unit must come back: a shipment on its way is cancelled, "
            "a delivered unit is returned. Once true it stays true."
        ),
    )


class DeliveryStatus(meta.WireModel):
    """What the shipping system reported."""

    phase: DeliveryPhase | None = pydantic.Field(
        default=None,
        description=(
            "Where the shipment stands: Pending, Shipping, Delivered, Cancelled, Returning or Returned."
        ),
    )
    shipment_id: str | None = pydantic.Field(
        default=None, max_length=128, description="The shipping system's id of the shipment."
    )
    tracking_number: str | None = pydantic.Field(
        default=None, max_length=128, description="The carrier's tracking number, for the customer."
    )
    carrier: str | None = pydantic.Field(default=None, max_length=128, description="Carrier of the shipment.")
    shipped_at: pydantic.AwareDatetime | None = pydantic.Field(
        default=None, description="When the shipment was handed to the carrier (RFC 3339)."
    )
    delivered_at: pydantic.AwareDatetime | None = pydantic.Field(
        default=None, description="When the unit reached the customer (RFC 3339)."
    )
    last_error: str | None = pydantic.Field(
        default=None,
        max_length=1024,
        description="The last failure reported by or about the shipping system.",
    )
    conditions: _Conditions = pydantic.Field(
        default_factory=list,
        description="Current state of the Delivery: Delivered, Ready.",
    )


class Delivery(meta.KubeObject):
    """The shipment of a rented unit to the customer, created by the operator and owned by its Rental."""

    kind: Literal["Delivery"] = pydantic.Field(
        default="Delivery", description="Kind of the object: Delivery."
    )
    spec: DeliverySpec = pydantic.Field(description="What to ship where; immutable.")
    status: DeliveryStatus = pydantic.Field(
        default_factory=DeliveryStatus, description="The shipping system's reports, written by the operator."
    )
