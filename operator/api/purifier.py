"""The Purifier kind: a catalog entry written by administrators, and the stock rentals draw units from.

Stock is reserved by name, not by counter: `status.holders` lists the rentals holding a unit, so a
reservation is an idempotent "add my name" under optimistic concurrency (resourceVersion), a retried or
re-run handler cannot reserve twice, and `allocated` is always `len(holders)`.
"""

from __future__ import annotations

from typing import Final, Literal

import pydantic

from rental_operator.api import conditions, meta

__all__ = [
    "MAX_MONTHLY_FEE",
    "RESOURCE",
    "Purifier",
    "PurifierSpec",
    "PurifierStatus",
]

# Keeps the rental amount (monthlyFee * at most 60 months) well inside the integers that JSON numbers
# carry exactly (2^53), whatever language reads the objects.
MAX_MONTHLY_FEE: Final = 1_000_000_000_000

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


class PurifierStatus(meta.WireModel):
    """Stock as the operator accounts for it."""

    available: int = pydantic.Field(
        default=0,
        ge=0,
        description="Units free to rent: stock - allocated, or 0 when stock is below allocated.",
    )
    allocated: int = pydantic.Field(
        default=0, ge=0, description="Units held by rentals; equals len(holders)."
    )
    holders: list[meta.DnsSubdomain] = pydantic.Field(
        default_factory=list,
        description=(
            "Names of the Rentals (in this namespace) that hold a unit, one entry per unit. Reserving "
            "adds the rental's name, releasing removes it; allocated always equals its length."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
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
