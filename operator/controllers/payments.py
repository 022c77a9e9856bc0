"""Takes the rental fee: calls the payment system for a Payment and records the answer in its status.

The call goes through the process's one circuit breaker (`partners.payments`). While it is open no
request is made and the Payment is `Deferred` ("pay later"); deferred payments are retried on a
schedule and charged once the payment system answers again, under the same idempotency key, so a
retried or repeated charge is never taken twice. Before the first request leaves, `attempts: 1` is
written, so a refund request later knows whether money may have moved. After each status change the
owning Rental is reconciled at once (the sibling reacting to the status, without waiting for a watch).
Triggered by the Payment's watch events and by the scheduler.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from rental_operator import kubeapi, metrics
from rental_operator.api import payment as api_payment
from rental_operator.controllers import context, owned
from rental_operator.partners import errors, transport
from rental_operator.reconcilers import billing, payments

__all__ = ["enqueue", "reconcile"]

logger = logging.getLogger(__name__)
RESOURCE = api_payment.RESOURCE
Call = payments.Call
# The answers of a charge that `rental_billing_charges_total` counts.
_ANSWERED = frozenset({payments.Phase.APPROVED, payments.Phase.DECLINED, payments.Phase.FAILED})
Failure = payments.Failure


def reconcile(ctx: context.Context, namespace: str, name: str) -> None:
    owned.reconcile(ctx, _KIND, namespace, name)


def enqueue(ctx: context.Context, namespace: str, name: str) -> None:
    """Reconcile as soon as a worker is free (merging with any request already waiting)."""
    _later(ctx, namespace, name, 0.0)


def _later(ctx: context.Context, namespace: str, name: str, delay: float) -> None:
    owned.later(ctx, _KIND, namespace, name, delay)


def _write(ctx: context.Context, body: dict[str, Any], status: api_payment.PaymentStatus) -> dict[str, Any]:
    before = (body.get("status") or {}).get("phase")
    written = ctx.payments.observe(ctx.kube.replace_status(RESOURCE, body, status.to_wire()))
    metrics.transition("Payment", before, status.phase)
    return written


def _pass(ctx: context.Context, body: dict[str, Any]) -> tuple[bool, str | None]:
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    changed = False
    for _ in range(3):  # e.g. resolve an unknown charge, then refund it
        payment = api_payment.Payment.from_body(body)
        call = payments.next_call(payment)
        if call is None:
            break
        try:
            body, status, retry = _call(ctx, body, payment, call)
        except kubeapi.Conflict:
            body = ctx.payments.observe(ctx.kube.get(RESOURCE, namespace, name))
            continue
        if status != payment.status:
            body = _write(ctx, body, status)
            changed = True
            if status.phase in _ANSWERED and (status.phase, status.attempt) != (
                payment.status.phase,
                payment.status.attempt,
            ):
                metrics.observe_charge(payment.spec.period, status.attempt or 1, status.phase.value.lower())
            event_type = (
                "Warning" if status.phase in (payments.Phase.DECLINED, payments.Phase.FAILED) else "Normal"
            )
            if status.phase != payment.status.phase and status.phase is not None:
                ctx.events.record(
                    body,
                    type_=event_type,
                    reason=f"Payment{status.phase.value}",
                    message=status.last_error or status.phase.value,
                )
        if retry is not None:
            _later(ctx, namespace, name, retry)
            break
    owner = api_payment.Payment.from_body(body).spec.rental
    return changed, owner


def _call(
    ctx: context.Context, body: dict[str, Any], payment: api_payment.Payment, call: Call
) -> tuple[dict[str, Any], api_payment.PaymentStatus, float | None]:
    """Make `call`; return the body, the status it leads to, and when to try again (None: no retry)."""
    now = ctx.clock()
    retry_seconds = ctx.settings.payment_retry_seconds
    if call is Call.VOID:
        return body, payments.voided(payment, now), None
    if call is Call.REFUND:
        return (body, *_refund(ctx, payment, now))

    if ctx.payment_client.breaker_state() == "open":
        # Pay later without a request (and without the write-ahead, which would claim one left).
        outcome = payments.charge_went_wrong(
            payment,
            Failure.NOT_SENT,
            payments.BREAKER_OPEN,
            now,
            attempts=payment.status.attempts,
            retry_seconds=retry_seconds,
        )
        return (body, *outcome)
    # CHARGE: record that a request is about to leave, before it does.
    starting = payments.charge_starting(payment, now)
    if starting is not None:
        body = _write(ctx, body, starting)
        payment = api_payment.Payment.from_body(body)
        attempts = payment.status.attempts
    else:
        attempts = payment.status.attempts + 1
    try:
        charge = ctx.payment_client.charge(
            amount=payment.spec.amount,
            currency=payment.spec.currency,
            customer_id=payment.spec.customer_id,
            reference=f"{payment.metadata.namespace}/{payment.spec.rental}",
            # The attempt the write-ahead recorded: each attempt at a charge has a key of its own.
            idempotency_key=billing.attempt_key(
                payment.spec.idempotency_key, payment.status.attempt or payment.spec.attempt
            ),
        )
    except errors.PartnerError as error:
        outcome = payments.charge_went_wrong(
            payment,
            _failure(error),
            str(error),
            now,
            attempts=attempts,
            retry_seconds=retry_seconds,
            retry_after=error.retry_after if isinstance(error, errors.BreakerOpen) else 0.0,
        )
        return (body, *outcome)
    outcome = payments.charge_answered(
        payment,
        approved=charge.approved,
        transaction_id=charge.id,
        reason=charge.reason,
        now=now,
        attempts=attempts,
    )
    return (body, *outcome)


def _refund(ctx: context.Context, payment: api_payment.Payment, now: datetime.datetime) -> payments.Outcome:
    if not payment.status.transaction_id:
        return payments.refund_without_transaction(payment, now)
    try:
        ctx.payment_client.refund(
            payment.status.transaction_id,
            idempotency_key=transport.derive_key(payment.spec.idempotency_key, "refund"),
        )
    except errors.PartnerError as error:
        return payments.refund_went_wrong(
            payment, _failure(error), str(error), now, retry_seconds=ctx.settings.payment_retry_seconds
        )
    return payments.Outcome(payments.refund_done(payment, now), None)


def _failure(error: errors.PartnerError) -> Failure:
    """The partner client's exception in the decision's terms (what each means: `partners.errors`)."""
    if isinstance(error, errors.BreakerOpen):
        return Failure.NOT_SENT
    if isinstance(error, errors.PartnerUnavailable):
        return Failure.NO_ANSWER if error.outcome_unknown else Failure.NOT_ARRIVED
    if isinstance(error, errors.PartnerRejected):
        return Failure.LATER if error.retryable else Failure.REFUSED
    return Failure.GARBLED


_KIND = owned.Kind(
    name="Payment",
    resource=RESOURCE,
    known=lambda ctx: ctx.payments,
    retry_seconds=lambda ctx: ctx.settings.payment_retry_seconds,
    run=_pass,
)
