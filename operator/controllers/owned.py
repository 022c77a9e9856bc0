"""What the Payment and Delivery controllers share: how one owned object is reconciled.

One object at a time (a lock per object), read from the store or, if it has not been seen yet, from
the API; a failed pass is retried later by the scheduler; and when a pass changed the object's status,
the owning Rental is reconciled right away (the sibling reacting to the status without waiting for the
watch to echo it). The owner is named by the object's `spec.rental`: only a nudge, since the Rental
takes an object of its sibling's name as its own only if it is (`reconcilers.rentals.payment_mismatch`),
so waking it for a stranger of the same name costs one pass and changes nothing. Each controller
supplies its own pass. Called by `controllers.payments` and `controllers.deliveries`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from rental_operator import kubeapi, metrics
from rental_operator.api import meta
from rental_operator.controllers import context, rentals
from rental_operator.runtime import store

__all__ = ["Kind", "later", "reconcile"]

logger = logging.getLogger(__name__)

# A pass over one object's newest body: (whether its status changed, the owning rental's name).
Pass = Callable[[context.Context, dict[str, Any]], tuple[bool, str | None]]


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    resource: meta.Resource
    known: Callable[[context.Context], store.Store[Any]]
    retry_seconds: Callable[[context.Context], float]
    run: Pass


def reconcile(ctx: context.Context, kind: Kind, namespace: str, name: str) -> None:
    try:
        with (
            metrics.HANDLER_SECONDS.labels(kind.name, "reconcile").time(),
            ctx.locks.hold((kind.name, namespace, name)),
        ):
            body = kind.known(ctx).get(namespace, name)
            if body is None:
                try:
                    body = kind.known(ctx).observe(ctx.kube.get(kind.resource, namespace, name))
                except kubeapi.NotFound:
                    return
            changed, owner = kind.run(ctx, body)
    except Exception as error:
        delay = kind.retry_seconds(ctx)
        logger.warning(
            "%s %s/%s: %s; retrying in %.0fs", kind.name, namespace, name, error, delay, exc_info=True
        )
        later(ctx, kind, namespace, name, delay)
        return
    if changed and owner:
        rentals.reconcile(ctx, namespace, owner)


def later(ctx: context.Context, kind: Kind, namespace: str, name: str, delay: float) -> None:
    ctx.scheduler.call_later(
        (kind.name, namespace, name), delay, lambda: reconcile(ctx, kind, namespace, name)
    )
