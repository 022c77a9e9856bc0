"""The stock allocator: reserve and release Purifier units under optimistic concurrency.

Per Purifier, one thread at a time computes the new count and journal (`reconcilers.stock`) from the
newest known object and writes the whole status guarded by its resourceVersion. A conflict means another
writer got there first: read again and recompute. So two processes, or two threads, can never both
take the last unit. Requests that queue up while a write is in flight are committed together by the
next write (group commit), so a burst of applications for one model costs a few writes, not one each.
Each write also drops the journal entries whose rentals have recorded their outcome, read from the
Rental store. Called by the Rental controller (reserve, release) and the Purifier handler.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from rental_operator import kubeapi, metrics
from rental_operator.api import conditions as api_conditions
from rental_operator.api import purifier as api_purifier
from rental_operator.api import rental as api_rental
from rental_operator.controllers import context
from rental_operator.reconcilers import stock
from rental_operator.runtime import batching

__all__ = ["enqueue_refresh", "is_current", "records_unit", "refresh", "release", "reserve", "transfer"]

logger = logging.getLogger(__name__)
RESOURCE = api_purifier.RESOURCE
_ATTEMPTS = 50
_STOCK_RESERVED = api_conditions.ConditionType.STOCK_RESERVED.value


def _current(ctx: context.Context, namespace: str, name: str, *, fresh: bool) -> dict[str, Any] | None:
    body = None if fresh else ctx.purifiers.get(namespace, name)
    if body is None:
        try:
            body = ctx.purifiers.observe(ctx.kube.get(RESOURCE, namespace, name))
        except kubeapi.NotFound:
            return None
    return body


@dataclasses.dataclass(eq=False)
class _Change(batching.Request):
    """One rental's reservation or release, waiting for the next commit on its Purifier."""

    claim: stock.Claim | None = None  # None: no change, only bring the status up to date
    releasing: bool = False
    transferring: bool = False  # the unit becomes the customer's (a release that never comes back)
    held: bool = False
    body: dict[str, Any] | None = None


def records_unit(rental: dict[str, Any]) -> bool:
    """Whether a Rental's own status (raw, as stored) records that it holds a unit."""
    for condition in (rental.get("status") or {}).get("conditions") or ():
        if condition.get("type") == _STOCK_RESERVED:
            return bool(condition.get("status") == "True")
    return False


def _records(
    ctx: context.Context, namespace: str, body: dict[str, Any], batch: list[_Change], *, fresh: bool
) -> dict[str, stock.Record]:
    """What each rental concerned (journaled or in the batch) records about its unit, by uid.

    A rental the store does not know is asked of the API: it may not be listed yet (start-up), or it
    may be gone, and an entry of a deleted rental must go rather than stay in the journal forever.
    The rentals of a release, and of every claim once the Purifier's write has conflicted, are read
    from the API too: a count (unlike a list of names) is only as right as the record it is decided
    on, and a process whose views lag behind (a standby that was active a moment ago) must not give
    back a unit twice. Releases are rare and a conflict means the view was stale anyway.
    """
    pending = (body.get("status") or {}).get("pending") or ()
    stored = {(c.get("uid", ""), c.get("rental", "")) for c in pending}
    asked = {(c.claim.uid, c.claim.rental) for c in batch if c.claim is not None and (fresh or c.releasing)}
    stored.update((c.claim.uid, c.claim.rental) for c in batch if c.claim is not None)
    records: dict[str, stock.Record] = {}
    for uid, name in stored:
        rental = None if (uid, name) in asked else ctx.rentals.get(namespace, name)
        if rental is None or rental["metadata"].get("uid") != uid:
            try:
                rental = ctx.rentals.observe(ctx.kube.get(api_rental.RESOURCE, namespace, name))
            except kubeapi.NotFound:
                rental = None
        if rental is None or rental["metadata"].get("uid") != uid:
            records[uid] = stock.Record.GONE
        else:
            records[uid] = stock.Record.HOLDING if records_unit(rental) else stock.Record.NOT_HOLDING
    return records


def _commit(ctx: context.Context, namespace: str, name: str, batch: list[_Change]) -> None:
    """Write the whole batch as one status update, re-reading and recomputing on conflict."""
    releases = [c.claim for c in batch if c.releasing and not c.transferring and c.claim is not None]
    transfers = [c.claim for c in batch if c.transferring and c.claim is not None]
    reserves = [c.claim for c in batch if not c.releasing and c.claim is not None]
    fresh = False
    for _ in range(_ATTEMPTS):
        body = _current(ctx, namespace, name, fresh=fresh)
        if body is None:
            for change in batch:
                change.body, change.held = None, False
            return
        obj = api_purifier.Purifier.from_body(body)
        status, outcomes = stock.settle(
            obj,
            release=releases,
            transfer=transfers,
            reserve=reserves,
            records=_records(ctx, namespace, body, batch, fresh=fresh),
            now=ctx.clock(),
        )
        if status is not None:
            try:
                body = ctx.purifiers.observe(ctx.kube.replace_status(RESOURCE, body, status.to_wire()))
            except kubeapi.Conflict:
                fresh = True
                continue
        for change in batch:
            change.body = body
            change.held = (
                not change.releasing
                and change.claim is not None
                and outcomes[change.claim.uid] is stock.Outcome.RESERVED
            )
        return
    raise RuntimeError(f"purifier {namespace}/{name}: status write kept conflicting")


def _submit(ctx: context.Context, namespace: str, name: str, change: _Change) -> _Change:
    committed: _Change = ctx.stock_changes.submit(
        (namespace, name), change, lambda batch: _commit(ctx, namespace, name, batch)
    )
    return committed


def reserve(
    ctx: context.Context, namespace: str, name: str, rental: stock.Claim
) -> tuple[dict[str, Any] | None, bool]:
    """Reserve a unit for `rental`: (the purifier after it, or None if there is none; whether it is held)."""
    change = _submit(ctx, namespace, name, _Change(claim=rental))
    return change.body, change.held


def release(ctx: context.Context, namespace: str, name: str, rental: stock.Claim) -> dict[str, Any] | None:
    """Give `rental`'s unit back; the purifier after it (None if there is no such purifier)."""
    return _submit(ctx, namespace, name, _Change(claim=rental, releasing=True)).body


def transfer(ctx: context.Context, namespace: str, name: str, rental: stock.Claim) -> dict[str, Any] | None:
    """Hand `rental`'s unit over to its customer for good; the purifier after it (None if there is none).

    Counted like a release (read from the API first, as releases are), but into `transferred`.
    """
    return _submit(ctx, namespace, name, _Change(claim=rental, releasing=True, transferring=True)).body


def is_current(body: dict[str, Any]) -> bool:
    """Whether a Purifier's status already agrees with its spec (nothing to refresh).

    Checked on the raw object: every reservation changes the status and comes back as a watch event,
    and most of those need no further write.
    """
    status = body.get("status") or {}
    stock_units = (body.get("spec") or {}).get("stock", 0)
    allocated = status.get("allocated")
    transferred = status.get("transferred") or 0
    return (
        isinstance(allocated, int)
        and isinstance(transferred, int)
        and status.get("observedGeneration") == body["metadata"].get("generation")
        and status.get("available") == max(stock_units - allocated - transferred, 0)
    )


def enqueue_refresh(ctx: context.Context, namespace: str, name: str) -> None:
    """Refresh the Purifier's status as soon as a worker is free."""
    ctx.scheduler.call_later(("purifier", namespace, name), 0.0, lambda: refresh(ctx, namespace, name))


def refresh(ctx: context.Context, namespace: str, name: str) -> None:
    """Bring counts and conditions in line with the spec (after a stock change, or on first sight)."""
    with metrics.HANDLER_SECONDS.labels("Purifier", "refresh").time():
        _submit(ctx, namespace, name, _Change())
