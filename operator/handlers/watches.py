"""The Kopf event handlers: every watch event feeds the stores and queues the kind's controller.

All decorators of the operator live here, each a thin async wrapper run in Kopf's event loop: record
the object, queue a reconciliation of it (runtime.scheduler, no delay) and return. The controllers
run on the scheduler's workers, not in Kopf's handler executor, so a burst of thousands of events
waits as one small entry per object instead of thousands of handler calls holding their bodies, and
an object that changes again while it waits is reconciled once. Payment and Delivery controllers
reconcile their owning Rental themselves after a change, which is how a sibling's status drives the
saga forward.
"""

from __future__ import annotations

from typing import Any

import kopf

from rental_operator.api import delivery, payment, purifier, rental
from rental_operator.controllers import context, deliveries, payments, rentals, stock
from rental_operator.mypage import embedded
from rental_operator.runtime import store

__all__ = [
    "delivery_event",
    "payment_event",
    "purifier_event",
    "rental_event",
]


def _record(known: store.Store[Any], event: kopf.RawEvent) -> dict[str, Any] | None:
    """Feed the store; the object to act on, or None when it was deleted."""
    obj = dict(event["object"])
    if event["type"] == "DELETED":
        known.forget(obj)
        return None
    return known.observe(obj)


def _feed_mypage(memo: kopf.Memo, kind: str, event: kopf.RawEvent) -> None:
    mypage: embedded.Embedded | None = memo.get("mypage")
    if mypage is not None:
        mypage.feed(kind, event["type"], event["object"])


# One handler per kind (each Kopf handler call has its own cost per event). MyPage's read side is fed
# first, in the event loop, so it sees each event at once, before the saga's work is queued.
@kopf.on.event(rental.RESOURCE.group, rental.RESOURCE.version, rental.RESOURCE.plural)
async def rental_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    _feed_mypage(memo, "Rental", event)
    ctx: context.Context = memo["context"]
    obj = _record(ctx.rentals, event)
    if obj is not None:
        fresh = not (obj.get("status") or {}).get("phase")  # an application nobody has looked at yet
        rentals.enqueue(ctx, obj["metadata"]["namespace"], obj["metadata"]["name"], new_work=fresh)


@kopf.on.event(payment.RESOURCE.group, payment.RESOURCE.version, payment.RESOURCE.plural)
async def payment_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    ctx: context.Context = memo["context"]
    obj = _record(ctx.payments, event)
    if obj is not None:
        payments.enqueue(ctx, obj["metadata"]["namespace"], obj["metadata"]["name"])


@kopf.on.event(delivery.RESOURCE.group, delivery.RESOURCE.version, delivery.RESOURCE.plural)
async def delivery_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    ctx: context.Context = memo["context"]
    obj = _record(ctx.deliveries, event)
    if obj is not None:
        deliveries.enqueue(ctx, obj["metadata"]["namespace"], obj["metadata"]["name"])


@kopf.on.event(purifier.RESOURCE.group, purifier.RESOURCE.version, purifier.RESOURCE.plural)
async def purifier_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    _feed_mypage(memo, "Purifier", event)
    ctx: context.Context = memo["context"]
    obj = _record(ctx.purifiers, event)
    if obj is not None and not stock.is_current(obj):
        stock.enqueue_refresh(ctx, obj["metadata"]["namespace"], obj["metadata"]["name"])
