"""The Rental kind: a customer's application to rent one unit of a Purifier, the center of the workflow.

Customers (or a front end on their behalf) write the spec; the operator writes the status. The status
carries the conditions logic depends on, a phase for humans, summaries of the Payment and Delivery the
rental owns (so `kubectl get rentals` and MyPage need nothing else), and a bounded history of phases.
"""

from __future__ import annotations

import enum
from typing import Final, Literal

import pydantic

from rental_operator.api import conditions, delivery, meta, payment
from rental_operator.api import purifier as api_purifier

__all__ = [
    "DEFAULT_MONTHS",
    "HISTORY_LIMIT",
    "MAX_MONTHS",
    "PHONE_PATTERN",
    "RESOURCE",
    "Billing",
    "Customer",
    "DeliverySummary",
    "Ending",
    "HistoryEntry",
    "PastDue",
    "PaymentSummary",
    "Rental",
    "RentalPhase",
    "RentalSpec",
    "RentalStatus",
]

DEFAULT_MONTHS: Final = 12
MAX_MONTHS: Final = 60
# status.history keeps the most recent transitions only: the object must stay small however often a
# rental changes phase (the API server also refuses longer lists). Writers drop the oldest entries.
HISTORY_LIMIT: Final = 20
# E.164: '+', a country code not starting with 0, at most 15 digits in all.
PHONE_PATTERN: Final = r"^\+[1-9][0-9]{6,14}$"

# Inside a class body a field named `conditions` shadows the module; annotations use this alias.
_Conditions = conditions.ConditionList

RESOURCE: Final = meta.Resource(
    kind="Rental",
    plural="rentals",
    singular="rental",
    short_names=("rent",),
    columns=(
        meta.PrinterColumn("Customer", ".spec.customer.id", "string", "Customer who applied."),
        meta.PrinterColumn("Purifier", ".spec.purifier", "string", "Purifier rented."),
        meta.PrinterColumn("Months", ".spec.months", "integer", "Rental period in months.", priority=1),
        meta.PrinterColumn("Phase", ".status.phase", "string", "Where the rental stands."),
        meta.PrinterColumn("Payment", ".status.payment.phase", "string", "Phase of the rental's payment."),
        meta.PrinterColumn("Delivery", ".status.delivery.phase", "string", "Phase of the rental's delivery."),
        meta.PrinterColumn("Message", ".status.message", "string", "Latest news for humans.", priority=1),
        meta.AGE_COLUMN,
    ),
)


class RentalPhase(enum.StrEnum):
    """Where a rental stands, for humans; logic reads conditions."""

    # Accepted, not processed yet.
    PENDING = "Pending"
    # A unit is reserved and payment is being taken.
    AWAITING_PAYMENT = "AwaitingPayment"
    # The payment system is unavailable; the reservation is kept for a bounded time and the fee is
    # charged automatically when payment recovers ("pay later").
    PAYMENT_DEFERRED = "PaymentDeferred"
    # Paid and delivery started: the rental is in force.
    CONFIRMED = "Confirmed"
    # In force, but a monthly charge was declined; it is retried on the dunning schedule.
    PAST_DUE = "PastDue"
    # Cancellation requested (by the customer, or for non-payment): refund or fee, delivery
    # cancellation or return, and stock release are running.
    CANCELLING = "Cancelling"
    # Cancellation finished; every compensation is done.
    CANCELLED = "Cancelled"
    # Every period of the term paid and the term over: the unit now belongs to the customer.
    COMPLETED = "Completed"
    # Never in force (no such purifier, out of stock, payment declined, deferral expired); nothing stays
    # charged or reserved. The reason is in a condition and an Event.
    REJECTED = "Rejected"


class Customer(meta.WireModel):
    """The customer renting the unit."""

    id: meta.CustomerId = pydantic.Field(
        description=(
            "The customer's id in the business's customer system. Cannot be changed: the rental's charges "
            "and its MyPage entry belong to this customer."
        ),
        json_schema_extra=meta.immutable(
            "spec.customer.id", "the rental's charges and its MyPage entry belong to the customer who applied"
        ),
    )
    name: str | None = pydantic.Field(
        default=None, max_length=200, description="The customer's name, for people."
    )
    phone: str = pydantic.Field(
        pattern=PHONE_PATTERN,
        description="Mobile number in E.164 form (for example +821012345678); status text messages go here.",
    )
    address: str = pydantic.Field(min_length=1, max_length=500, description="Where the unit is delivered.")
    language: Literal["ko", "en"] | None = pydantic.Field(
        default=None,
        description=(
            "The language of the customer's text messages and pages: `ko` (Korean) or `en` (English). "
            "Unset: the operator's RENTAL_DEFAULT_LANGUAGE."
        ),
    )


class RentalSpec(meta.WireModel):
    """The application as the customer made it."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": (
                        "!has(oldSelf.cancelled) || !oldSelf.cancelled"
                        " || (has(self.cancelled) && self.cancelled)"
                    ),
                    "message": "spec.cancelled cannot be set back to false once true",
                    "fieldPath": ".cancelled",
                }
            ]
        }
    )

    purifier: meta.DnsSubdomain = pydantic.Field(
        description="Name of the Purifier to rent, in the rental's namespace. Cannot be changed.",
        json_schema_extra=meta.immutable("spec.purifier", "a rental is for the unit it reserved"),
    )
    customer: Customer = pydantic.Field(description="The customer renting the unit.")
    months: int = pydantic.Field(
        default=DEFAULT_MONTHS,
        ge=1,
        le=MAX_MONTHS,
        description=(
            "The contract term in months (1 to 60): the monthly fee is charged once per month of it, the "
            "first at application. May be raised while the rental is in force (the added months are "
            "billed like the rest), never lowered."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self >= oldSelf",
                    "message": "spec.months cannot be lowered: the term was agreed (it may be raised)",
                }
            ]
        },
    )
    cancelled: bool = pydantic.Field(
        default=False,
        description=(
            "Set to true to cancel the rental: the fee is refunded, the delivery cancelled or returned and "
            "the unit released. Once true it cannot be set back to false."
        ),
    )


class PaymentSummary(meta.WireModel):
    """The rental's latest charge as seen from the rental."""

    name: str | None = pydantic.Field(default=None, max_length=253, description="Name of the Payment object.")
    period: int | None = pydantic.Field(
        default=None,
        ge=1,
        le=payment.MAX_PERIOD,
        description="The billing period it pays for; absent for an early-termination fee.",
    )
    fee: bool | None = pydantic.Field(
        default=None, description="True when it is the early-termination fee rather than a period's charge."
    )
    phase: payment.PaymentPhase | None = pydantic.Field(default=None, description="Phase of the Payment.")
    amount: int | None = pydantic.Field(
        default=None,
        ge=0,
        description="Amount charged in minor units: one month's fee as locked at application, or the fee.",
    )
    currency: meta.CurrencyCode | None = pydantic.Field(
        default=None, description="ISO 4217 code of the amount."
    )
    transaction_id: str | None = pydantic.Field(
        default=None, max_length=128, description="The payment system's id of the charge."
    )


class PastDue(meta.WireModel):
    """A declined monthly charge being retried on the dunning schedule."""

    period: int = pydantic.Field(ge=1, le=payment.MAX_PERIOD, description="The period unpaid.")
    since: pydantic.AwareDatetime = pydantic.Field(description="When its first attempt was declined.")
    attempts: int = pydantic.Field(ge=1, le=payment.MAX_ATTEMPTS, description="Attempts declined so far.")
    next_attempt_at: pydantic.AwareDatetime | None = pydantic.Field(
        default=None,
        description="When the next attempt is made; absent once the dunning schedule is exhausted.",
    )


class Ending(enum.StrEnum):
    """How a contract in force ended early."""

    # Before delivery or within the withdrawal period after it: every charge refunded.
    WITHDRAWAL = "Withdrawal"
    # Later: billing stopped, paid periods kept, the early-termination fee inside the mandatory period.
    TERMINATION = "Termination"
    # The dunning schedule ran out: the unit is collected, nothing refunded, no fee.
    NON_PAYMENT = "NonPayment"


class Billing(meta.WireModel):
    """The monthly contract: terms locked at application, and what has been paid."""

    monthly_fee: int = pydantic.Field(
        gt=0, le=api_purifier.MAX_MONTHLY_FEE, description="The fee per period, in minor units."
    )
    currency: meta.CurrencyCode = pydantic.Field(description="ISO 4217 code of every amount here.")
    mandatory_months: int = pydantic.Field(
        default=0, ge=0, le=api_purifier.MAX_MANDATORY_MONTHS, description="The mandatory use period."
    )
    early_termination_percent: int = pydantic.Field(
        default=0, ge=0, le=100, description="The fee for ending inside the mandatory period, in percent."
    )
    periods_total: int = pydantic.Field(ge=1, le=MAX_MONTHS, description="Periods in the term (spec.months).")
    periods_paid: int = pydantic.Field(default=0, ge=0, le=MAX_MONTHS, description="Periods paid so far.")
    paid_amount: int = pydantic.Field(default=0, ge=0, description="Sum of the periods' charges approved.")
    refunded_amount: int = pydantic.Field(default=0, ge=0, description="Sum of the charges refunded.")
    fee_amount: int | None = pydantic.Field(
        default=None, ge=0, description="The early-termination fee charged, if any."
    )
    anchor: pydantic.AwareDatetime | None = pydantic.Field(
        default=None,
        description="When period 1 was paid: every later period is due a whole number of months after it.",
    )
    next_charge_at: pydantic.AwareDatetime | None = pydantic.Field(
        default=None, description="When the next period is due; absent when nothing more is owed."
    )
    term_ends_at: pydantic.AwareDatetime | None = pydantic.Field(
        default=None, description="When the term ends: the anchor plus spec.months periods."
    )
    withdrawal_ends_at: pydantic.AwareDatetime | None = pydantic.Field(
        default=None,
        description=(
            "Until when a cancellation is a withdrawal with every charge refunded: the delivery's time "
            "plus RENTAL_WITHDRAWAL_PERIOD. Absent before delivery (a cancellation then is one too)."
        ),
    )
    past_due: PastDue | None = pydantic.Field(
        default=None, description="The declined charge being retried, if any."
    )
    ending: Ending | None = pydantic.Field(
        default=None,
        description="How the contract ended early (Withdrawal, Termination, NonPayment), once decided.",
    )
    ending_at: pydantic.AwareDatetime | None = pydantic.Field(
        default=None, description="When the early ending was decided: the cancellation's time."
    )


class DeliverySummary(meta.WireModel):
    """The rental's Delivery as seen from the rental."""

    name: str | None = pydantic.Field(
        default=None, max_length=253, description="Name of the Delivery object."
    )
    phase: delivery.DeliveryPhase | None = pydantic.Field(default=None, description="Phase of the Delivery.")
    tracking_number: str | None = pydantic.Field(
        default=None, max_length=128, description="The carrier's tracking number."
    )


class HistoryEntry(meta.WireModel):
    """One phase transition of the rental or of its delivery, or a billing event of its contract (a
    charge, a declined charge, the term's end coming); each one is sent to the customer by SMS."""

    seq: int = pydantic.Field(
        default=0,
        ge=0,
        description="Number of the transition, counting from 1; never reused, even after trimming.",
    )
    kind: Literal["Rental", "Delivery", "Billing"] = pydantic.Field(
        default="Rental",
        description=(
            "Whose phase changed: the Rental's own or its Delivery's; Billing for the contract's events."
        ),
    )
    phase: str = pydantic.Field(
        max_length=32,
        description=(
            "The phase entered: a Rental phase, or a Delivery phase when kind is Delivery; for Billing, "
            "Charged, ChargeDeclined, TermEnding or FeeCharged."
        ),
    )
    at: pydantic.AwareDatetime = pydantic.Field(description="When it entered the phase (RFC 3339).")
    message: str | None = pydantic.Field(default=None, max_length=1024, description="Why, for people.")
    period: int | None = pydantic.Field(
        default=None, ge=1, le=payment.MAX_PERIOD, description="Billing: the period concerned."
    )
    amount: int | None = pydantic.Field(
        default=None,
        ge=0,
        le=payment.MAX_AMOUNT,
        description="Billing: the amount concerned, in minor units.",
    )
    due_at: pydantic.AwareDatetime | None = pydantic.Field(
        default=None,
        description=(
            "Billing: the date the customer is told (the next attempt at a declined charge, the term's end)."
        ),
    )


class RentalStatus(meta.WireModel):
    """Where the rental stands, written by the operator."""

    phase: RentalPhase | None = pydantic.Field(
        default=None,
        description=(
            "Where the rental stands, for people: Pending, AwaitingPayment, PaymentDeferred, Confirmed, "
            "PastDue, Cancelling, Cancelled, Completed or Rejected. Automation should read conditions "
            "instead."
        ),
    )
    message: str | None = pydantic.Field(
        default=None, max_length=1024, description="Latest news about the rental, for people."
    )
    payment: PaymentSummary | None = pydantic.Field(
        default=None, description="Summary of the rental's Payment, once there is one."
    )
    billing: Billing | None = pydantic.Field(
        default=None, description="The monthly contract, once its terms are locked (at application)."
    )
    delivery: DeliverySummary | None = pydantic.Field(
        default=None, description="Summary of the rental's Delivery, once there is one."
    )
    deferred_until: pydantic.AwareDatetime | None = pydantic.Field(
        default=None,
        description=(
            "While payment is deferred: when the rental gives up its reservation and is rejected if the "
            "payment system has not recovered (RFC 3339)."
        ),
    )
    observed_generation: int | None = pydantic.Field(
        default=None, ge=0, description="The .metadata.generation this status was computed for."
    )
    notified_seq: int | None = pydantic.Field(
        default=None,
        ge=0,
        description=(
            "The history seq up to which the customer has been sent a text message; later entries are "
            "sent (again, under the same idempotency key) after a restart."
        ),
    )
    conditions: _Conditions = pydantic.Field(
        default_factory=list,
        description="Current state of the rental: StockReserved, Paid, DeliveryStarted, Ready.",
    )
    history: list[HistoryEntry] = pydantic.Field(
        default_factory=list,
        max_length=HISTORY_LIMIT,
        description=f"The most recent phase transitions, oldest first (at most {HISTORY_LIMIT} are kept).",
    )


class Rental(meta.KubeObject):
    """A customer's application to rent a water purifier for a number of months."""

    kind: Literal["Rental"] = pydantic.Field(default="Rental", description="Kind of the object: Rental.")
    spec: RentalSpec = pydantic.Field(description="The application: which purifier, for whom, for how long.")
    status: RentalStatus = pydantic.Field(
        default_factory=RentalStatus, description="Where the rental stands, written by the operator."
    )
