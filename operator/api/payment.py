"""The Payment kind: one charge (a billing period, or an early-termination fee) of one Rental, created by
the operator and owned by that Rental.

The spec is the charge request and never changes (the API server refuses any edit), so the idempotency
key sent to the payment system always goes with the same amount; only the attempt number may rise (a
declined monthly charge retried on the dunning schedule, each attempt under a key of its own) and the
refund flag be set. The status records what the payment system answered. Rental status mirrors the
latest charge's phase, amount and transaction id for `kubectl get`.
"""

from __future__ import annotations

import enum
from typing import Final, Literal

import pydantic

from rental_operator.api import conditions, meta

__all__ = [
    "MAX_AMOUNT",
    "MAX_ATTEMPTS",
    "MAX_PERIOD",
    "RESOURCE",
    "Payment",
    "PaymentPhase",
    "PaymentSpec",
    "PaymentStatus",
]

# The largest charge: the largest monthly fee for the longest rental (see purifier.MAX_MONTHLY_FEE), the
# bound the single up-front charge once needed; a fee is smaller still.
MAX_AMOUNT: Final = 60_000_000_000_000
# A term is at most 60 months; a period number beyond any term is surely a mistake.
MAX_PERIOD: Final = 60
# The first attempt and the dunning schedule's retries, with room for a long custom schedule.
MAX_ATTEMPTS: Final = 100

# Inside a class body a field named `conditions` shadows the module; annotations use this alias.
_Conditions = conditions.ConditionList

RESOURCE: Final = meta.Resource(
    kind="Payment",
    plural="payments",
    singular="payment",
    short_names=("pay",),
    columns=(
        meta.PrinterColumn("Rental", ".spec.rental", "string", "Rental this payment is for."),
        meta.PrinterColumn("Period", ".spec.period", "integer", "Billing period paid for (none: a fee)."),
        meta.PrinterColumn("Amount", ".spec.amount", "integer", "Amount charged, in minor units."),
        meta.PrinterColumn("Currency", ".spec.currency", "string", "Currency of the amount."),
        meta.PrinterColumn("Phase", ".status.phase", "string", "Where the payment stands."),
        meta.PrinterColumn(
            "Transaction", ".status.transactionId", "string", "Payment system's id.", priority=1
        ),
        meta.PrinterColumn("Attempt", ".status.attempt", "integer", "Attempt at the charge.", priority=1),
        meta.AGE_COLUMN,
    ),
)


class PaymentPhase(enum.StrEnum):
    """Where a payment stands, for humans (logic reads conditions)."""

    # Created; the charge has not been answered yet.
    PENDING = "Pending"
    # The payment system approved the charge.
    APPROVED = "Approved"
    # The payment system declined the charge (final).
    DECLINED = "Declined"
    # The payment system is unavailable; the charge is retried when it recovers.
    DEFERRED = "Deferred"
    # A refund of the approved charge is under way.
    REFUNDING = "Refunding"
    # The charge was given back.
    REFUNDED = "Refunded"
    # The charge cannot be taken for a reason retrying will not fix; see lastError.
    FAILED = "Failed"


_WHY = "a Payment is one charge; create a new one instead"


class PaymentSpec(meta.WireModel):
    """The charge to make, fixed when the Payment is created."""

    model_config = pydantic.ConfigDict(json_schema_extra=meta.one_way_flag("refund"))

    rental: meta.DnsSubdomain = pydantic.Field(
        description="Name of the Rental (same namespace) this charge is for.",
        json_schema_extra=meta.immutable("spec.rental", _WHY),
    )
    period: int | None = pydantic.Field(
        default=None,
        ge=1,
        le=MAX_PERIOD,
        json_schema_extra=meta.immutable("spec.period", _WHY),
        description=(
            "The billing period this charge pays for, counting from 1 (charged at application); absent "
            "for an early-termination fee."
        ),
    )
    amount: int = pydantic.Field(
        json_schema_extra=meta.immutable("spec.amount", _WHY),
        gt=0,
        le=MAX_AMOUNT,
        description=(
            "Amount to charge in minor units of currency: one month's fee locked at application, or the "
            "early-termination fee."
        ),
    )
    currency: meta.CurrencyCode = pydantic.Field(
        json_schema_extra=meta.immutable("spec.currency", _WHY),
        default="KRW",
        description="ISO 4217 code of the amount.",
    )
    customer_id: meta.CustomerId = pydantic.Field(
        json_schema_extra=meta.immutable("spec.customerId", _WHY),
        description="Customer who pays (the Rental's spec.customer.id).",
    )
    idempotency_key: str = pydantic.Field(
        json_schema_extra=meta.immutable("spec.idempotencyKey", _WHY),
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9._:/-]+$",
        description=(
            "The charge's key: attempt n is sent with the Idempotency-Key `<idempotencyKey>-a<n>`, so a "
            "retried request never charges twice, and a retry after a decline is a charge of its own."
        ),
    )
    attempt: int = pydantic.Field(
        default=1,
        ge=1,
        le=MAX_ATTEMPTS,
        description=(
            "The attempt to make: raised by the owning Rental to retry a declined charge on the dunning "
            "schedule. Never lowered."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self >= oldSelf", "message": "spec.attempt cannot be lowered"}
            ]
        },
    )
    refund: bool = pydantic.Field(
        default=False,
        description=(
            "Set by the owning Rental when the charge must be given back (cancellation, rejection): "
            "an approved charge is refunded, a charge never sent is not made. Once true it stays true."
        ),
    )


class PaymentStatus(meta.WireModel):
    """What the payment system answered."""

    phase: PaymentPhase | None = pydantic.Field(
        default=None,
        description=(
            "Where the payment stands: Pending, Approved, Declined, Deferred, Refunding, Refunded or Failed."
        ),
    )
    transaction_id: str | None = pydantic.Field(
        default=None, max_length=128, description="The payment system's id of the charge."
    )
    attempt: int | None = pydantic.Field(
        default=None,
        ge=1,
        le=MAX_ATTEMPTS,
        description="The attempt (spec.attempt) that phase and attempts describe; absent before the first.",
    )
    attempts: int = pydantic.Field(
        default=0,
        ge=0,
        description="Charge requests sent for the current attempt (a lost answer is asked again).",
    )
    last_error: str | None = pydantic.Field(
        default=None,
        max_length=1024,
        description="The last failure or decline reason reported by or about the payment system.",
    )
    approved_at: pydantic.AwareDatetime | None = pydantic.Field(
        default=None, description="When the payment system approved the charge (RFC 3339)."
    )
    refunded_at: pydantic.AwareDatetime | None = pydantic.Field(
        default=None, description="When the charge was refunded (RFC 3339)."
    )
    conditions: _Conditions = pydantic.Field(
        default_factory=list,
        description="Current state of the Payment: Paid, Refunded, Ready.",
    )


class Payment(meta.KubeObject):
    """A charge of a Rental's fee, created by the operator and owned by that Rental."""

    kind: Literal["Payment"] = pydantic.Field(default="Payment", description="Kind of the object: Payment.")
    spec: PaymentSpec = pydantic.Field(description="The charge to make; immutable.")
    status: PaymentStatus = pydantic.Field(
        default_factory=PaymentStatus, description="The payment system's answers, written by the operator."
    )
