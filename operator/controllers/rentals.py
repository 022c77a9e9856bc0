"""Executes the Rental saga: gathers the facts, runs `reconcilers.rentals.decide`, carries out its plan.

One pass: take the newest known Rental, Purifier, Payment and Delivery; ask for a plan; execute its
actions (each idempotent), fold their results into the facts and ask again, until the plan has no
actions left; then write the Rental's status once, guarded by its resourceVersion, post the Events,
and text the customer about new transitions. A conflict (someone wrote the Rental meanwhile) starts
the pass over from a fresh read. Triggered by the Rental's own watch events and by its Payment's and
Delivery's (their handlers call `reconcile` for the owner), and by the scheduler for timed steps.

The Payment and Delivery are looked up by the rental's name, so what is found there is handed to the
decision as the rental's own only if `reconcilers.rentals` says it is (controlling owner uid, expected
spec); a stranger is passed on as the reason it is not, to be reported, and never acted on.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from typing import Any

from rental_operator import kubeapi, metrics
from rental_operator.api import delivery as api_delivery
from rental_operator.api import payment as api_payment
from rental_operator.api import purifier as api_purifier
from rental_operator.api import rental as api_rental
from rental_operator.controllers import context, notifier, stock
from rental_operator.reconcilers import billing, contract, rentals
from rental_operator.reconcilers import stock as reconcilers_stock
from rental_operator.runtime import store

__all__ = ["enqueue", "reconcile"]

logger = logging.getLogger(__name__)
RESOURCE = api_rental.RESOURCE
_MAX_STEPS = 12
_RETRY_SECONDS = 2.0


def reconcile(ctx: context.Context, namespace: str, name: str) -> None:
    """Advance one rental as far as it can go now; schedule a retry if something failed."""
    try:
        with (
            metrics.HANDLER_SECONDS.labels("Rental", "reconcile").time(),
            ctx.locks.hold(("rental", namespace, name)),
        ):
            for _ in range(5):
                try:
                    _pass(ctx, namespace, name)
                    return
                except kubeapi.Conflict:
                    _refetch(ctx, namespace, name)
            raise RuntimeError("the rental kept changing while being reconciled")
    except Exception as error:
        logger.warning(
            "rental %s/%s: %s; retrying in %.0fs", namespace, name, error, _RETRY_SECONDS, exc_info=True
        )
        _later(ctx, namespace, name, _RETRY_SECONDS)


def enqueue(ctx: context.Context, namespace: str, name: str, *, new_work: bool = False) -> None:
    """Reconcile the rental as soon as a worker is free (merging with any request already waiting);
    `new_work` (an application not yet looked at) waits behind rentals already under way."""
    _later(ctx, namespace, name, 0.0, new_work=new_work)


def _later(ctx: context.Context, namespace: str, name: str, delay: float, *, new_work: bool = False) -> None:
    ctx.scheduler.call_later(
        ("rental", namespace, name), delay, lambda: reconcile(ctx, namespace, name), new_work=new_work
    )


def _refetch(ctx: context.Context, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return ctx.rentals.observe(ctx.kube.get(RESOURCE, namespace, name))
    except kubeapi.NotFound:
        return None


def _sibling(
    ctx: context.Context, known: store.Store[Any], resource: Any, namespace: str, name: str, *, expected: bool
) -> dict[str, Any] | None:
    """The rental's Payment or Delivery; asked of the API when the rental says one exists but the
    store has not seen it yet (after a restart the rentals may be listed before their siblings)."""
    body = known.get(namespace, name)
    if body is None and expected:
        try:
            body = known.observe(ctx.kube.get(resource, namespace, name))
        except kubeapi.NotFound:
            body = None
    return body


def _purifier_view(body: dict[str, Any] | None, uid: str) -> api_purifier.Purifier | None:
    """The Purifier as one rental's decision needs it: spec, counts, and this rental's journal entry.

    During a burst the journal holds many changes in flight; validating all of them for every
    rental's pass would make the burst quadratic, and a decision only reads its own entry.
    """
    if body is None:
        return None
    status = dict(body.get("status") or {})
    status["pending"] = [c for c in status.get("pending") or () if c.get("uid") == uid]
    return api_purifier.Purifier.from_body({**body, "status": status})


def _owner_uid(body: dict[str, Any]) -> str | None:
    return rentals.controller_uid(body["metadata"].get("ownerReferences") or ())


def _own_payment(
    facts: rentals.Facts, body: dict[str, Any], period: int | None
) -> tuple[api_payment.Payment | None, str | None]:
    """What was found under the name of the rental's charge for `period` (None: the fee): the rental's
    own, or why it is not."""
    payment = api_payment.Payment.from_body(body)
    mismatch = rentals.payment_mismatch(
        facts.rental, facts.purifier, payment, _owner_uid(body), period=period
    )
    return (None, mismatch) if mismatch else (payment, None)


def _with_payment(facts: rentals.Facts, body: dict[str, Any] | None, period: int | None = 1) -> rentals.Facts:
    """`facts` with what was found under the name of the rental's charge for `period` (1: the
    application's, None: the early-termination fee): its own, or why it is not."""
    payment, mismatch = _own_payment(facts, body, period) if body is not None else (None, None)
    if period == 1:
        return dataclasses.replace(facts, payment=payment, payment_mismatch=mismatch)
    changes: dict[str, Any] = {"payment_mismatch": mismatch or facts.payment_mismatch}
    if period is None:
        changes["fee"] = payment
    else:
        charges = {p: c for p, c in facts.charges.items() if p != period}
        changes["charges"] = {**charges, period: payment} if payment is not None else charges
    return dataclasses.replace(facts, **changes)


def _payment_named(facts: rentals.Facts, name: str) -> api_payment.Payment:
    """The rental's own charge a decision named (its refund, retry or deletion is meant for it)."""
    for payment in (facts.payment, *facts.charges.values(), facts.fee):
        if payment is not None and payment.metadata.name == name:
            return payment
    raise RuntimeError(f"the decision named Payment {name!r}, which is not among the rental's own")


def terms(ctx: context.Context) -> contract.Terms:
    """The billing settings as the contract reads them, parsed once per process."""
    if ctx.billing_terms is None:
        settings = ctx.settings
        length = settings.billing_period_length
        ctx.billing_terms = contract.Terms(
            cycle=billing.Cycle.fixed(length) if length is not None else billing.Cycle.monthly(),
            dunning=settings.dunning_delays,
            withdrawal=settings.withdrawal_window,
            history=settings.payment_history,
        )
    return ctx.billing_terms


def _with_delivery(facts: rentals.Facts, body: dict[str, Any] | None) -> rentals.Facts:
    """`facts` with what was found under the rental's Delivery name: its own, or why it is not."""
    if body is None:
        return dataclasses.replace(facts, delivery=None, delivery_mismatch=None)
    delivery = api_delivery.Delivery.from_body(body)
    mismatch = rentals.delivery_mismatch(facts.rental, delivery, _owner_uid(body))
    return dataclasses.replace(facts, delivery=None if mismatch else delivery, delivery_mismatch=mismatch)


def _facts(ctx: context.Context, body: dict[str, Any]) -> rentals.Facts:
    rental = api_rental.Rental.from_body(body)
    namespace, name = rental.metadata.namespace or "", rental.metadata.name or ""
    purifier_body = ctx.purifiers.get(namespace, rental.spec.purifier)
    if purifier_body is None:
        # Not seen yet (start-up) is not the same as not there: ask before rejecting anything.
        try:
            purifier_body = ctx.purifiers.observe(
                ctx.kube.get(api_purifier.RESOURCE, namespace, rental.spec.purifier)
            )
        except kubeapi.NotFound:
            purifier_body = None
    purifier = _purifier_view(purifier_body, rental.metadata.uid or "")
    latest = rental.status.payment.name if rental.status.payment else None
    first = rentals.payment_name(name, 1)
    payment_body = _sibling(
        ctx, ctx.payments, api_payment.RESOURCE, namespace, first, expected=latest == first
    )
    delivery_body = _sibling(
        ctx,
        ctx.deliveries,
        api_delivery.RESOURCE,
        namespace,
        name,
        expected=rental.status.delivery is not None,
    )
    facts = rentals.Facts(
        rental=rental,
        purifier=purifier,
        payment=None,
        delivery=None,
        now=ctx.clock(),
        deferral_timeout=datetime.timedelta(seconds=ctx.settings.deferral_timeout_seconds),
        notified_seq=ctx.notified.get(rental.metadata.uid or "", 0),
        terms=terms(ctx),
    )
    facts = _with_delivery(_with_payment(facts, payment_body), delivery_body)
    return _with_contract(ctx, facts, latest)


def _with_contract(ctx: context.Context, facts: rentals.Facts, latest: str | None) -> rentals.Facts:
    """`facts` with the rental's later charges (periods 2 and on, up to the one being charged) and its
    fee: from the store, or from the API for the one the status names as the latest (not seen yet)."""
    rental, contract_terms = facts.rental, facts.rental.status.billing
    if contract_terms is None or contract_terms.anchor is None:
        return facts
    namespace, name = rental.metadata.namespace or "", rental.metadata.name or ""
    last = min(contract_terms.periods_paid + 1, max(contract_terms.periods_total, rental.spec.months))
    for period in range(2, last + 1):
        charge = rentals.payment_name(name, period)
        body = _sibling(ctx, ctx.payments, api_payment.RESOURCE, namespace, charge, expected=latest == charge)
        if body is not None:
            facts = _with_payment(facts, body, period)
    if contract_terms.fee_amount:
        fee = rentals.fee_payment_name(name)
        body = _sibling(ctx, ctx.payments, api_payment.RESOURCE, namespace, fee, expected=latest == fee)
        if body is not None:
            facts = _with_payment(facts, body, None)
    return facts


def _owned(body: dict[str, Any], resource: Any, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    metadata = body["metadata"]
    return {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": {
            "name": name,
            "namespace": metadata["namespace"],
            "labels": {"rental.purifier.io/rental": rentals.rental_label(metadata["name"])},
            "ownerReferences": [
                {
                    "apiVersion": RESOURCE.api_version,
                    "kind": RESOURCE.kind,
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }


def _flag(
    ctx: context.Context,
    known: store.Store[Any],
    resource: Any,
    decided_on: Any,
    *,
    name: str,
    flag: str,
) -> dict[str, Any]:
    """Set a one-way spec flag (`refund`, `cancelled`) on the rental's own Payment or Delivery.

    Unguarded by resourceVersion (a status written meanwhile does not matter to a spec flag), but
    guarded by uid: the flag is meant for the object the decision was made on (`decided_on`), never
    for another that has taken its name since.
    """
    return _set_spec(ctx, known, resource, decided_on, name=name, spec={flag: True})


def _set_spec(
    ctx: context.Context,
    known: store.Store[Any],
    resource: Any,
    decided_on: Any,
    *,
    name: str,
    spec: dict[str, Any],
) -> dict[str, Any]:
    """Merge `spec` into the spec of the object the decision was made on (guarded by its uid)."""
    namespace = decided_on.metadata.namespace
    current = known.get(namespace, name) or ctx.kube.get(resource, namespace, name)
    patch = {"metadata": {"uid": decided_on.metadata.uid}, "spec": spec}
    return known.observe(ctx.kube.merge_patch(resource, current, patch, guarded=False))


def _execute(
    ctx: context.Context, body: dict[str, Any], facts: rentals.Facts, action: rentals.Action
) -> tuple[dict[str, Any], rentals.Facts]:
    """Carry out one action; return the Rental's body and the facts as they are afterwards."""
    namespace, name, uid = body["metadata"]["namespace"], body["metadata"]["name"], body["metadata"]["uid"]
    finalizers = list(body["metadata"].get("finalizers") or [])
    match action:
        case rentals.AddFinalizer():
            body = ctx.rentals.observe(
                ctx.kube.merge_patch(
                    RESOURCE, body, {"metadata": {"finalizers": [*finalizers, rentals.FINALIZER]}}
                )
            )
            rental = facts.rental.model_copy(update={"metadata": api_rental.Rental.from_body(body).metadata})
            return body, dataclasses.replace(facts, rental=rental)
        case rentals.RemoveFinalizer():
            if rentals.FINALIZER in finalizers:
                remaining = [f for f in finalizers if f != rentals.FINALIZER]
                body = ctx.kube.merge_patch(RESOURCE, body, {"metadata": {"finalizers": remaining}})
            return body, facts
        case rentals.Reserve(purifier=purifier):
            after, held = stock.reserve(ctx, namespace, purifier, reconcilers_stock.Claim(name, uid))
            return body, dataclasses.replace(
                facts,
                purifier=_purifier_view(after, uid),
                reservation_refused=not held,
            )
        case rentals.Release(purifier=purifier):
            after = stock.release(ctx, namespace, purifier, reconcilers_stock.Claim(name, uid))
            return body, dataclasses.replace(facts, purifier=_purifier_view(after, uid))
        case rentals.Transfer(purifier=purifier):
            after = stock.transfer(ctx, namespace, purifier, reconcilers_stock.Claim(name, uid))
            return body, dataclasses.replace(facts, purifier=_purifier_view(after, uid))
        case rentals.CreatePayment(name=payment_name, spec=spec):
            # An existing object of the name is returned instead of created: checked like any other.
            created = ctx.payments.observe(
                ctx.kube.create(
                    api_payment.RESOURCE,
                    namespace,
                    _owned(body, api_payment.RESOURCE, payment_name, spec.to_wire()),
                )
            )
            return body, _with_payment(facts, created, spec.period)
        case rentals.RequestRefund(payment=payment_name):
            decided_on = _payment_named(facts, payment_name)
            patched = _flag(
                ctx, ctx.payments, api_payment.RESOURCE, decided_on, name=payment_name, flag="refund"
            )
            return body, _with_payment(facts, patched, decided_on.spec.period)
        case rentals.RetryCharge(payment=payment_name, attempt=attempt):
            decided_on = _payment_named(facts, payment_name)
            patched = _set_spec(
                ctx,
                ctx.payments,
                api_payment.RESOURCE,
                decided_on,
                name=payment_name,
                spec={"attempt": attempt},
            )
            return body, _with_payment(facts, patched, decided_on.spec.period)
        case rentals.DeletePayment(payment=payment_name):
            decided_on = _payment_named(facts, payment_name)
            ctx.kube.delete(
                api_payment.RESOURCE,
                {"metadata": {"namespace": namespace, "name": payment_name, "uid": decided_on.metadata.uid}},
            )
            ctx.payments.forget({"metadata": {"namespace": namespace, "name": payment_name}})
            period = decided_on.spec.period
            if period == 1:
                return body, dataclasses.replace(facts, payment=None)
            return body, dataclasses.replace(
                facts, charges={p: c for p, c in facts.charges.items() if p != period}
            )
        case rentals.CreateDelivery(spec=spec):
            created = ctx.deliveries.observe(
                ctx.kube.create(
                    api_delivery.RESOURCE,
                    namespace,
                    _owned(body, api_delivery.RESOURCE, name, spec.to_wire()),
                )
            )
            return body, _with_delivery(facts, created)
        case rentals.StopDelivery(delivery=delivery_name):
            patched = _flag(
                ctx,
                ctx.deliveries,
                api_delivery.RESOURCE,
                facts.delivery,
                name=delivery_name,
                flag="cancelled",
            )
            return body, dataclasses.replace(facts, delivery=api_delivery.Delivery.from_body(patched))
    raise AssertionError(f"unknown action {action!r}")


def _pass(ctx: context.Context, namespace: str, name: str) -> None:
    body = ctx.rentals.get(namespace, name) or _refetch(ctx, namespace, name)
    if body is None:
        return  # gone: nothing to do
    facts = _facts(ctx, body)
    original = facts.rental.status
    events: list[rentals.Event] = []
    removed = False
    for _ in range(_MAX_STEPS):
        plan = rentals.decide(facts)
        events.extend(plan.events)
        if not plan.actions:
            break
        for action in plan.actions:
            body, facts = _execute(ctx, body, facts, action)
            removed = removed or isinstance(action, rentals.RemoveFinalizer)
        facts = dataclasses.replace(facts, rental=facts.rental.model_copy(update={"status": plan.status}))
        if removed:
            break
    else:
        raise RuntimeError(f"no steady plan after {_MAX_STEPS} steps")

    if not removed and plan.status != original:
        body = ctx.rentals.observe(ctx.kube.replace_status(RESOURCE, body, plan.status.to_wire()))
        metrics.transition("Rental", original.phase, plan.status.phase)
    for event in events:
        ctx.events.record(body, type_=event.type, reason=event.reason, message=event.message)
    if removed:
        return
    rental = api_rental.Rental.from_body(body)
    sent = notifier.notify(ctx, rental)
    if not sent:
        _later(ctx, namespace, name, _RETRY_SECONDS)
    elif ctx.notified.get(rental.metadata.uid or "", 0) > (
        rental.status.notified_seq or 0
    ) and rentals.is_resting(rental.status):
        _later(ctx, namespace, name, 0.5)  # record the mark so a restart does not resend the last text
    if plan.requeue_after is not None:
        _later(ctx, namespace, name, plan.requeue_after + 0.5)
