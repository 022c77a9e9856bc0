"""Ships the unit: creates the shipment, follows it to delivered, cancels or returns it on request.

Calls the shipping partner for a Delivery and records what it reports. Moving shipments (shipping,
returning) are polled on a schedule (`RENTAL_SHIPPING_POLL_SECONDS`); a failed call is retried with
the same idempotency key. After each phase change the owning Rental is reconciled at once.
Triggered by the Delivery's watch events and by the scheduler.
"""

from __future__ import annotations

import logging
from typing import Any

from rental_operator import kubeapi, metrics
from rental_operator.api import delivery as api_delivery
from rental_operator.controllers import context, owned
from rental_operator.partners import errors
from rental_operator.reconcilers import deliveries

__all__ = ["enqueue", "reconcile"]

logger = logging.getLogger(__name__)
RESOURCE = api_delivery.RESOURCE
Call = deliveries.Call


def reconcile(ctx: context.Context, namespace: str, name: str) -> None:
    owned.reconcile(ctx, _KIND, namespace, name)


def enqueue(ctx: context.Context, namespace: str, name: str) -> None:
    """Reconcile as soon as a worker is free (merging with any request already waiting)."""
    _later(ctx, namespace, name, 0.0)


def _later(ctx: context.Context, namespace: str, name: str, delay: float) -> None:
    owned.later(ctx, _KIND, namespace, name, delay)


def _pass(ctx: context.Context, body: dict[str, Any]) -> tuple[bool, str | None]:
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    changed = False
    for _ in range(4):  # e.g. learn the shipment, then cancel it
        delivery = api_delivery.Delivery.from_body(body)
        call = deliveries.next_call(delivery)
        if call is None:
            break
        status, retry = _call(ctx, delivery, call)
        if status != delivery.status:
            try:
                body = ctx.deliveries.observe(ctx.kube.replace_status(RESOURCE, body, status.to_wire()))
                metrics.transition("Delivery", delivery.status.phase, status.phase)
            except kubeapi.Conflict:
                body = ctx.deliveries.observe(ctx.kube.get(RESOURCE, namespace, name))
                continue
            changed = changed or status.phase != delivery.status.phase
            if status.phase != delivery.status.phase and status.phase is not None:
                ctx.events.record(
                    body,
                    type_="Normal",
                    reason=status.phase.value,
                    message=f"shipment {status.shipment_id} is {status.phase.value.lower()}",
                )
        if retry is not None:
            _later(ctx, namespace, name, retry)
            break
        if call is Call.POLL:
            break
    return changed, api_delivery.Delivery.from_body(body).spec.rental


def _call(
    ctx: context.Context, delivery: api_delivery.Delivery, call: Call
) -> tuple[api_delivery.DeliveryStatus, float | None]:
    """Make `call`; the status it leads to and when to call again (None: as soon as it is seen)."""
    client, poll = ctx.shipping_client, ctx.settings.shipping_poll_seconds
    key = deliveries.idempotency_key(delivery, call)
    shipment_id = delivery.status.shipment_id or ""
    try:
        if call is Call.CREATE:
            shipment = client.create(
                reference=f"{delivery.metadata.namespace}/{delivery.spec.rental}",
                address=delivery.spec.address,
                item=delivery.spec.purifier,
                idempotency_key=key,
            )
        elif call is Call.CANCEL:
            try:
                shipment = client.cancel(shipment_id, idempotency_key=key)
            except errors.StateConflict:
                shipment = client.get(shipment_id)  # delivered meanwhile: a return comes next
        elif call is Call.RETURN:
            shipment = client.return_(shipment_id, idempotency_key=key)
        else:
            shipment = client.get(shipment_id)
    except errors.PartnerError as error:
        return deliveries.call_failed(delivery, str(error), poll_seconds=poll)
    return deliveries.reported(
        delivery,
        call,
        shipment_id=shipment.id,
        tracking_number=shipment.tracking_number,
        carrier=shipment.carrier,
        partner_status=shipment.status,
        now=ctx.clock(),
        poll_seconds=poll,
    )


_KIND = owned.Kind(
    name="Delivery",
    resource=RESOURCE,
    known=lambda ctx: ctx.deliveries,
    retry_seconds=lambda ctx: ctx.settings.shipping_poll_seconds,
    run=_pass,
)
