"""Stock accounting of a Purifier: how many units are held, how many are free, which changes are in flight.

A unit is taken or given back in two writes: the Purifier's `status.allocated` (under optimistic
concurrency, like ResourceQuota's `status.used`, so two writers can never both take the last unit), then
the Rental's `StockReserved` condition. A crash between the two must not take or give back a second unit
when the step is retried, so the first write also journals the change in `status.pending`, keyed by the
rental's uid: a retried reserve finds its entry and takes nothing more, a retried release likewise. Once
the rental has recorded the outcome the entry is dropped (by the next write to the Purifier, which costs
no write of its own), so the Purifier holds the changes in flight, not one entry per rental ever served.

Whether a rental holds a unit is therefore: a Reserve entry for its uid, or its own record says so and
no Release entry for its uid is pending (`holds`).
Called by the stock allocator in the controllers layer and by the Rental decisions.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Mapping, Sequence

from rental_operator.api import conditions as api_conditions
from rental_operator.api import purifier
from rental_operator.reconcilers import conditions

__all__ = ["Claim", "Outcome", "Record", "holds", "settle", "summarize"]

Operation = purifier.StockOperation


class Outcome(enum.StrEnum):
    RESERVED = "Reserved"  # the rental holds a unit (newly or already)
    OUT_OF_STOCK = "OutOfStock"  # every unit is held by other rentals


class Record(enum.Enum):
    """What a rental's own status says about its unit, as last observed."""

    HOLDING = "holding"  # StockReserved is True
    NOT_HOLDING = "not-holding"  # StockReserved is absent or not True
    GONE = "gone"  # no rental of that uid exists any more (deleted, or re-created under its name)
    UNKNOWN = "unknown"  # not observed (yet): keep its entry


@dataclasses.dataclass(frozen=True)
class Claim:
    """One rental asking to reserve or release, identified by uid (names can be reused)."""

    rental: str
    uid: str


def holds(status: purifier.PurifierStatus, uid: str, *, recorded: bool) -> bool:
    """Whether the rental of `uid` holds a unit, given what its own status records (`recorded`).

    A unit transferred to its customer is held by nobody: it left the business's stock for good.
    """
    for change in status.pending:
        if change.uid == uid:
            return change.operation is Operation.RESERVE
    return recorded


def summarize(
    spec: purifier.PurifierSpec,
    status: purifier.PurifierStatus,
    *,
    allocated: int,
    pending: Sequence[purifier.StockChange],
    generation: int | None,
    now: datetime.datetime,
    transferred: int | None = None,
) -> purifier.PurifierStatus:
    """The status that follows from the count, the journal and the spec: counts, Ready, generation.

    `transferred` defaults to the count already in `status`: only a transfer changes it.
    """
    allocated = max(allocated, 0)
    transferred = max(status.transferred if transferred is None else transferred, 0)
    available = max(spec.stock - allocated - transferred, 0)
    reasons = api_conditions.Reason
    if spec.stock < allocated + transferred:
        ready, reason = False, reasons.OVERCOMMITTED
        owned = f" and the {transferred} units now owned by customers" if transferred else ""
        message = (
            f"stock {spec.stock} is below the {allocated} units held by rentals{owned}; no new rental "
            "can be accepted until units come back or stock is raised"
        )
    elif available == 0:
        ready, reason, message = True, reasons.SOLD_OUT, f"all {spec.stock} units are rented out"
    else:
        ready, reason, message = True, reasons.IN_STOCK, f"{available} of {spec.stock} units free to rent"
    return status.model_copy(
        update={
            "pending": list(pending),
            "allocated": allocated,
            "transferred": transferred,
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
    obj: purifier.Purifier,
    *,
    release: Sequence[Claim],
    reserve: Sequence[Claim],
    records: Mapping[str, Record],
    now: datetime.datetime,
    transfer: Sequence[Claim] = (),
) -> tuple[purifier.PurifierStatus | None, dict[str, Outcome]]:
    """Apply a batch of releases, transfers and reservations (keyed by uid) and tidy the journal, in one
    status. A transfer is a release whose unit does not come back: ownership passed to the customer at
    the end of a paid-up term, so it moves from `allocated` to `transferred`.

    `records` says, for uids in the journal and in the batch, what each rental's own status records;
    a journal entry whose outcome its rental has recorded is dropped, and a Reserve entry of a rental
    that no longer exists gives its unit back. Releases are applied first, so a unit given back is free
    for the reservations of the same batch; those are served in arrival order. Returns the status to
    write (None when nothing changed) and the outcome of each reservation by uid.
    """
    allocated, transferred = obj.status.allocated, obj.status.transferred
    journal: dict[str, purifier.StockChange] = {}
    for change in obj.status.pending:
        record = records.get(change.uid, Record.UNKNOWN)
        if change.operation is Operation.RESERVE:
            if record is Record.HOLDING:
                continue  # recorded by the rental: the count alone carries it now
            if record is Record.GONE:
                allocated -= 1  # taken for a rental that vanished before recording it
                continue
        elif record in (Record.NOT_HOLDING, Record.GONE):
            continue  # the release is recorded (or moot): drop the entry
        journal[change.uid] = change

    for claims, operation in ((release, Operation.RELEASE), (transfer, Operation.TRANSFER)):
        for claim in claims:
            entry = journal.get(claim.uid)
            if entry is not None and entry.operation is not Operation.RESERVE:
                continue  # already given back, or already the customer's
            if entry is not None:
                del journal[claim.uid]  # a reservation never recorded: undo it, nothing to journal
            elif records.get(claim.uid) is Record.HOLDING:
                journal[claim.uid] = purifier.StockChange(
                    rental=claim.rental, uid=claim.uid, operation=operation
                )
            else:
                continue  # not held: nothing to give back or hand over
            allocated -= 1
            if operation is Operation.TRANSFER:
                transferred += 1

    outcomes: dict[str, Outcome] = {}
    for claim in reserve:
        entry = journal.get(claim.uid)
        if entry is not None:
            held = entry.operation is Operation.RESERVE
        elif records.get(claim.uid) is Record.HOLDING:
            held = True  # the rental already records a unit
        elif obj.spec.stock - allocated - transferred > 0:
            allocated += 1
            journal[claim.uid] = purifier.StockChange(
                rental=claim.rental, uid=claim.uid, operation=Operation.RESERVE
            )
            held = True
        else:
            held = False
        outcomes[claim.uid] = Outcome.RESERVED if held else Outcome.OUT_OF_STOCK

    status = summarize(
        obj.spec,
        obj.status,
        allocated=allocated,
        transferred=transferred,
        pending=list(journal.values()),
        generation=obj.metadata.generation,
        now=now,
    )
    return (status if status != obj.status else None), outcomes
