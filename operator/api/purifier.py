"""The Purifier kind: a catalog entry written by administrators, and the stock rentals draw units from.

Stock is counted on the Purifier (`status.allocated`, written under optimistic concurrency, so two
writers can never both take the last unit) and recorded on each Rental (its `StockReserved` condition).
Between the two writes a change is journaled in `status.pending`, one entry per rental uid, so a retried
or restarted reservation or release is applied once; an entry is dropped once its rental has recorded
the outcome. The Purifier therefore stays small however many rentals hold its units (see
reconcilers/stock.py and docs/architecture.md).
"""

from __future__ import annotations

import enum
from typing import Final, Literal

import pydantic

from rental_operator.api import conditions, meta

__all__ = [
    "MAX_MANDATORY_MONTHS",
    "MAX_MONTHLY_FEE",
    "RESOURCE",
    "Purifier",
    "PurifierSpec",
    "PurifierStatus",
    "StockChange",
    "StockOperation",
]

# Keeps the rental amount (monthlyFee * at most 60 months) well inside the integers that JSON numbers
# carry exactly (2^53), whatever language reads the objects.
MAX_MONTHLY_FEE: Final = 1_000_000_000_000
MAX_MANDATORY_MONTHS: Final = 60

# Inside a class body a field named `conditions` shadows the module; annotations use this alias.
_Conditions = conditions.ConditionList

RESOURCE: Final = meta.Resource(
    kind="Purifier",
    plural="purifiers",
    singular="purifier",
    short_names=("pur",),
    columns=(
        meta.PrinterColumn("Model", ".spec.model", "string", "Model of the water purifier."),
        meta.PrinterColumn("Fee", ".spec.monthlyFee", "integer", "Monthly fee in minor units."),
        meta.PrinterColumn("Currency", ".spec.currency", "string", "Currency of the fee.", priority=1),
        meta.PrinterColumn("Stock", ".spec.stock", "integer", "Units the business owns."),
        meta.PrinterColumn("Available", ".status.available", "integer", "Units free to rent."),
        meta.PrinterColumn("Allocated", ".status.allocated", "integer", "Units held by rentals.", priority=1),
        meta.AGE_COLUMN,
    ),
)


class PurifierSpec(meta.WireModel):
    """The catalog entry as the administrator describes it."""

    model: str = pydantic.Field(
        min_length=1,
        max_length=200,
        description="Model name of the water purifier, for example AquaPure 300.",
    )
    display_name: str | None = pydantic.Field(
        default=None, max_length=200, description="Name shown to customers; the model name when unset."
    )
    monthly_fee: int = pydantic.Field(
        gt=0,
        le=MAX_MONTHLY_FEE,
        description=(
            "Rental fee per month, in minor units of the currency (KRW has none: 39000 is 39,000 won)."
        ),
    )
    currency: meta.CurrencyCode = pydantic.Field(
        default="KRW", description="ISO 4217 code of the currency of monthlyFee."
    )
    stock: int = pydantic.Field(
        ge=0,
        description=(
            "Units the business owns. May be lowered below status.allocated: existing rentals keep "
            "their units and the Purifier reports Ready=False with reason Overcommitted."
        ),
    )
    mandatory_months: int = pydantic.Field(
        default=0,
        ge=0,
        le=MAX_MANDATORY_MONTHS,
        description=(
            "The mandatory use period in months: ending a rental earlier (after its withdrawal period) "
            "costs the early-termination fee. 0: none. Locked into each rental when it is applied for."
        ),
    )
    early_termination_percent: int = pydantic.Field(
        default=10,
        ge=0,
        le=100,
        description=(
            "The early-termination fee, as a percentage of the fees of the mandatory months not yet "
            "paid (rounded down to a whole minor unit). Locked into each rental when it is applied for."
        ),
    )


class StockOperation(enum.StrEnum):
    RESERVE = "Reserve"
    RELEASE = "Release"
    # The unit's ownership passed to the customer at the end of a paid-up term.
    TRANSFER = "Transfer"


class StockChange(meta.WireModel):
    """A reservation or release already counted in `allocated` that its rental has not yet recorded."""

    rental: meta.DnsSubdomain = pydantic.Field(description="Name of the Rental (in this namespace).")
    uid: str = pydantic.Field(
        min_length=1,
        max_length=128,
        description="UID of the Rental: a deleted and re-created rental of the same name is another one.",
    )
    operation: StockOperation = pydantic.Field(
        description=(
            "Reserve (a unit was taken for the rental), Release (its unit was given back) or Transfer "
            "(its unit became the customer's at the end of a paid-up term)."
        )
    )


class PurifierStatus(meta.WireModel):
    """Stock as the operator accounts for it."""

    available: int = pydantic.Field(
        default=0,
        ge=0,
        description="Units free to rent: stock - allocated, or 0 when stock is below allocated.",
    )
    allocated: int = pydantic.Field(
        default=0,
        ge=0,
        description=(
            "Units held by rentals: the number of Rentals whose StockReserved condition is True, once "
            "every entry of pending has been recorded by its rental."
        ),
    )
    transferred: int = pydantic.Field(
        default=0,
        ge=0,
        description=(
            "Units whose ownership passed to a customer at the end of a paid-up term; they never come "
            "back to stock. available + allocated + transferred == stock while stock covers them."
        ),
    )
    pending: list[StockChange] = pydantic.Field(
        default_factory=list,
        max_length=100_000,
        description=(
            "Reservations and releases counted in allocated that their Rentals have not recorded yet "
            "(a journal that makes a retried change apply once); an entry goes once its rental records "
            "the outcome, so the list only holds changes in flight."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["uid"]},
    )
    observed_generation: int | None = pydantic.Field(
        default=None, ge=0, description="The .metadata.generation this status was computed for."
    )
    conditions: _Conditions = pydantic.Field(
        default_factory=list,
        description="Current state of the Purifier: Ready (reasons InStock, SoldOut, Overcommitted).",
    )


class Purifier(meta.KubeObject):
    """A water purifier model offered for rent, with the stock of units the business owns."""

    kind: Literal["Purifier"] = pydantic.Field(
        default="Purifier", description="Kind of the object: Purifier."
    )
    spec: PurifierSpec = pydantic.Field(description="The catalog entry: model, fee and stock.")
    status: PurifierStatus = pydantic.Field(
        default_factory=PurifierStatus, description="Stock accounting, written by the operator."
    )
