"""Status conditions: the Kubernetes `Condition` shape and the documented vocabulary of types and reasons.

Logic reads conditions, never phases (the phase is for humans). Every condition type and reason the
operator writes is a constant here with a sentence on what it means, so "why is this rental not done?"
can be answered from `kubectl describe` with this file open, and reconcilers cannot misspell a reason.
The condition helper that sets them (transition time only on flips, observedGeneration always) lives
with the reconcilers; this module only defines the data.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Final

import pydantic

from rental_operator.api import meta

__all__ = [
    "LIST_MAP_BY_TYPE",
    "Condition",
    "ConditionList",
    "ConditionStatus",
    "ConditionType",
    "Reason",
]


class ConditionStatus(enum.StrEnum):
    """Whether a condition holds: True, False, or Unknown while it has not been determined."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(enum.StrEnum):
    """The condition types the operator sets (upper camel case, as Kubernetes recommends)."""

    # Rental: one unit of the Purifier is held for this rental, counted in the Purifier's
    # status.allocated; this condition is the rental's record of it. Purifier: not used.
    STOCK_RESERVED = "StockReserved"
    # Rental and Payment: the fee was charged and the payment system approved it. False while the charge
    # is pending or deferred, after a decline, and once the charge has been refunded.
    PAID = "Paid"
    # Rental: a Delivery exists and its shipment was handed to the carrier (shipping or delivered).
    DELIVERY_STARTED = "DeliveryStarted"
    # Delivery: the unit reached the customer.
    DELIVERED = "Delivered"
    # Payment and Rental: the charge was given back to the customer (after cancellation).
    REFUNDED = "Refunded"
    # Every kind: the summary. Rental: the rental is in force (Confirmed). Purifier: status agrees with
    # spec and stock covers every holder. Payment: approved. Delivery: delivered.
    READY = "Ready"


class Reason(enum.StrEnum):
    """Why a condition has its status: one machine-readable word, explained by the condition's message."""

    # Not processed yet: the operator has seen the object but not decided anything about it.
    PENDING = "Pending"

    # --- stock (StockReserved on a Rental, Ready on a Purifier) ---
    # A unit is held for the rental.
    RESERVED = "Reserved"
    # spec.purifier names no Purifier in the rental's namespace.
    PURIFIER_NOT_FOUND = "PurifierNotFound"
    # Every unit of the Purifier is already held by other rentals.
    OUT_OF_STOCK = "OutOfStock"
    # The unit was given back to the Purifier (rejection, cancellation, or return after delivery).
    RELEASED = "Released"
    # Purifier Ready=True: units are free to rent.
    IN_STOCK = "InStock"
    # Purifier Ready=True: stock covers every holder but none is free.
    SOLD_OUT = "SoldOut"
    # Purifier Ready=False: spec.stock was lowered below status.allocated; no rental is dropped for it.
    OVERCOMMITTED = "Overcommitted"

    # --- payment (Paid on a Rental or Payment; Refunded) ---
    # The charge request is being made or waits for its answer.
    PAYMENT_PENDING = "PaymentPending"
    # The payment system approved the charge.
    PAYMENT_APPROVED = "PaymentApproved"
    # The payment system declined the charge: the application's first charge is final (the rental is
    # rejected); a monthly one is retried (see ChargeDeclined).
    PAYMENT_DECLINED = "PaymentDeclined"
    # The payment system is unavailable (circuit open, timeouts, 5xx): the charge is retried later and
    # the reservation is kept until the deferral deadline ("pay later").
    PAYMENT_DEFERRED = "PaymentDeferred"
    # The deferral deadline passed before the payment system recovered; the rental is rejected.
    DEFERRAL_EXPIRED = "DeferralExpired"
    # The payment could not be taken for a reason that retrying will not fix (for example a 4xx other
    # than a decline); details in the message.
    PAYMENT_FAILED = "PaymentFailed"
    # A refund of an approved charge was requested and is not confirmed yet.
    REFUNDING = "Refunding"
    # The charge was refunded.
    REFUNDED = "Refunded"
    # Nothing was ever charged, so there is nothing to refund.
    NOT_CHARGED = "NotCharged"
    # A Payment with the rental's Payment name exists but is not the rental's charge (no or another
    # owning Rental, or a charge other than the rental's): it is never trusted. The rental reserves or
    # charges nothing more and waits until the object is gone (garbage collection removes one whose
    # Rental was deleted; one made by hand has to be deleted by a person). Paid=False, Ready=False.
    PAYMENT_MISMATCH = "PaymentMismatch"

    # --- billing: the monthly contract (Paid on a Rental in force) ---
    # Every period due so far is paid.
    PAID_UP = "PaidUp"
    # A monthly charge was declined; it is retried on the dunning schedule (phase PastDue). Ready
    # stays True: the rental is still in force.
    CHARGE_DECLINED = "ChargeDeclined"
    # The dunning schedule ran out: the contract ends, the unit is collected; nothing is refunded and
    # no fee is charged.
    NON_PAYMENT = "NonPayment"
    # Cancelled before delivery or within the withdrawal period: every charge is refunded.
    WITHDRAWN = "Withdrawn"
    # Cancelled after the withdrawal period: billing stopped, paid periods kept, and inside the
    # mandatory period the early-termination fee charged once.
    TERMINATED = "Terminated"
    # Every period of the term is paid and the term is over (Ready False: nothing is in force any more).
    COMPLETED = "Completed"
    # The unit's ownership passed to the customer at the end of the term (StockReserved False: it left
    # the stock for good, it is never released).
    TRANSFERRED = "Transferred"

    # --- delivery (DeliveryStarted on a Rental, Delivered on a Delivery) ---
    # The rental is paid but its shipment has not been created yet.
    DELIVERY_PENDING = "DeliveryPending"
    # The carrier has the unit and it is on its way.
    SHIPPING = "Shipping"
    # The unit reached the customer.
    DELIVERED = "Delivered"
    # The shipment was cancelled before delivery.
    SHIPMENT_CANCELLED = "ShipmentCancelled"
    # The customer is sending a delivered unit back.
    RETURNING = "Returning"
    # The returned unit arrived; it is back in stock.
    RETURNED = "Returned"
    # A Delivery with the rental's Delivery name exists but is not the rental's shipment (no or
    # another owning Rental, or another unit or customer): it is never trusted. The paid rental ships
    # nothing until the object is gone (see PaymentMismatch). DeliveryStarted=False.
    DELIVERY_MISMATCH = "DeliveryMismatch"

    # --- the Rental's Ready summary ---
    # The rental is paid and its delivery has started: in force.
    CONFIRMED = "Confirmed"
    # A unit is reserved and payment is being taken.
    AWAITING_PAYMENT = "AwaitingPayment"
    # Cancellation was requested; refund, delivery cancellation or return, and release are running.
    CANCELLING = "Cancelling"
    # Cancellation finished: refunded, shipment cancelled or returned, unit released.
    CANCELLED = "Cancelled"
    # The rental never came into force (see the other conditions for which step refused it).
    REJECTED = "Rejected"


# Conditions are a list keyed by `type` (at most one condition per type), declared so for server-side
# apply and strategic merges; `type` is therefore required on every condition.
LIST_MAP_BY_TYPE: Final[dict[str, Any]] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}


class Condition(meta.WireModel):
    """One aspect of the object's current state, in the shape of Kubernetes' metav1.Condition."""

    type: str = pydantic.Field(
        max_length=316,
        pattern=(
            r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
            r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
        ),
        description="Type of condition in CamelCase, for example StockReserved, Paid or Ready.",
    )
    status: ConditionStatus = pydantic.Field(
        description="Status of the condition: True, False, or Unknown while it is not determined yet."
    )
    observed_generation: int | None = pydantic.Field(
        default=None,
        ge=0,
        description=(
            "The .metadata.generation the condition was set for; if it is older than the object's "
            "current generation, the condition is out of date with the spec."
        ),
    )
    last_transition_time: pydantic.AwareDatetime = pydantic.Field(
        description="When the condition last changed from one status to another (RFC 3339)."
    )
    reason: str = pydantic.Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="Machine-readable CamelCase reason for the condition's last transition.",
    )
    message: str = pydantic.Field(
        default="",
        max_length=32768,
        description="Human-readable details about the transition; may be empty.",
    )


ConditionList = Annotated[list[Condition], pydantic.Field(json_schema_extra=LIST_MAP_BY_TYPE)]
"""The `status.conditions` of every kind: Conditions keyed by type."""
