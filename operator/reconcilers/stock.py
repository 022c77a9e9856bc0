"""Stock accounting of a Purifier: who holds a unit, how many are free, whether stock covers holders.

The Purifier's `status.holders` (one rental name per held unit) is the record of reservations;
`allocated` and `available` are derived from it and `spec.stock`. Reserving and releasing are
idempotent set operations (reserving twice holds one unit; releasing a non-holder is a no-op), which
is what makes a retried or restarted reservation safe. The read-modify-write around these functions
runs under optimistic concurrency (the Purifier's resourceVersion), like ResourceQuota's `status.used`:
two operators, or two threads, can never both take the last unit (see docs/architecture.md).
Called by the stock allocator in the handlers layer and by the Purifier handler.
"""

from __future__ import annotations

import datetime
import enum

from rental_operator.api import conditions as api_conditions
from rental_operator.api import purifier
from rental_operator.reconcilers import conditions

__all__ = ["Outcome", "release", "reserve", "settle", "summarize"]


class Outcome(enum.StrEnum):
    RESERVED = "Reserved"  # the rental holds a unit (newly or already)
    OUT_OF_STOCK = "OutOfStock"  # every unit is held by other rentals


def summarize(
    spec: purifier.PurifierSpec,
    status: purifier.PurifierStatus,
    holders: list[str],
    *,
    generation: int | None,
    now: datetime.datetime,
) -> purifier.PurifierStatus:
    """The status that follows from `holders` and the spec: counts, observedGeneration and Ready."""
    ordered = sorted(set(holders))
    allocated = len(ordered)
    available = max(spec.stock - allocated, 0)
    reasons = api_conditions.Reason
    if spec.stock < allocated:
        ready, reason = False, reasons.OVERCOMMITTED
        message = (
            f"stock {spec.stock} is below the {allocated} units held by rentals; no new rental can "
            "be accepted until units come back or stock is raised"
        )
    elif available == 0:
        ready, reason, message = True, reasons.SOLD_OUT, f"all {spec.stock} units are rented out"
    else:
        ready, reason, message = True, reasons.IN_STOCK, f"{available} of {spec.stock} units free to rent"
    return status.model_copy(
        update={
            "holders": ordered,
            "allocated": allocated,
            "available": available,
            "observed_generation": generation,
            "conditions": conditions.set_condition(
                status.conditions,
                type_=api_conditions.ConditionType.READY,
                status=ready,
                reason=reason,
                message=message,
                generation=generation,
                now=now,
            ),
        }
    )


def settle(
    obj: purifier.Purifier, *, release: list[str], reserve: list[str], now: datetime.datetime
) -> tuple[purifier.PurifierStatus | None, dict[str, Outcome]]:
    """Release then reserve in one go (a batch of requests that queued up for this Purifier).

    Releases first, so a unit given back is free for the reservations of the same batch; those are
    served in arrival order. Returns the status to write (None when nothing changed) and the outcome
    of each reservation.
    """
    leaving = set(release)
    holders = [name for name in obj.status.holders if name not in leaving]
    outcomes: dict[str, Outcome] = {}
    for rental in reserve:
        if rental not in holders and obj.spec.stock - len(holders) > 0:
            holders.append(rental)
        outcomes[rental] = Outcome.RESERVED if rental in holders else Outcome.OUT_OF_STOCK
    status = _resummarize(obj, holders, now)
    return (status if status != obj.status else None), outcomes


def reserve(
    obj: purifier.Purifier, rentals: list[str], *, now: datetime.datetime
) -> tuple[purifier.PurifierStatus | None, dict[str, Outcome]]:
    """Reserve one unit for each of `rentals` (in order) as far as stock allows."""
    return settle(obj, release=[], reserve=rentals, now=now)


def release(
    obj: purifier.Purifier, rentals: list[str], *, now: datetime.datetime
) -> purifier.PurifierStatus | None:
    """The status without `rentals` among the holders, or None when nothing changes."""
    return settle(obj, release=rentals, reserve=[], now=now)[0]


def _resummarize(
    obj: purifier.Purifier, holders: list[str], now: datetime.datetime
) -> purifier.PurifierStatus:
    return summarize(obj.spec, obj.status, holders, generation=obj.metadata.generation, now=now)
