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

import logging
from typing import Any

from rental_operator import kubeapi, metrics
from rental_operator.api import payment as api_payment
from rental_operator.controllers import context, owned
from rental_operator.partners import errors, transport
from rental_operator.reconcilers import payments

__all__ = ["enqueue", "reconcile"]

logger = logging.getLogger(__name__)
RESOURCE = api_payment.RESOURCE
Call = payments.Call


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
        if not payment.status.transaction_id:
            # Approved without a transaction id cannot come from a payment system keeping the
            # contract; a person has to look, the refund stays requested.
            return (
                body,
                payments.refund_unavailable(payment, "approved charge has no transaction id", now),
                None,
            )
        try:
            ctx.payment_client.refund(
                payment.status.transaction_id,
                idempotency_key=transport.derive_key(payment.spec.idempotency_key, "refund"),
            )
        except errors.PartnerUnavailable as error:
            return body, payments.refund_unavailable(payment, error.message, now), retry_seconds
        except errors.PartnerError as error:
            # A refund refused outright needs a person; keep asking, slowly, and say why.
            return body, payments.refund_unavailable(payment, f"refused: {error}", now), retry_seconds * 6
        return body, payments.refund_done(payment, now), None

    if ctx.payment_client.breaker_state() == "open":
        # Pay later without a request (and without the write-ahead, which would claim one left).
        message = "payment system unavailable: circuit breaker open"
        status = payments.charge_unavailable(payment, message, now, attempts=payment.status.attempts)
        return body, status, retry_seconds
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
            idempotency_key=payment.spec.idempotency_key,
        )
    except errors.BreakerOpen as error:
        # No request was made: the attempt count stays as it is.
        status = payments.charge_unavailable(payment, error.message, now, attempts=payment.status.attempts)
        return body, status, max(error.retry_after, retry_seconds)
    except errors.PartnerUnavailable as error:
        # A request that surely never arrived (connection refused) is not an attempt that may have
        # charged; not counting it keeps a later cancellation free of any call.
        counted = attempts if error.outcome_unknown else attempts - 1
        return (
            body,
            payments.charge_unavailable(payment, error.message, now, attempts=counted),
            retry_seconds,
        )
    except errors.PartnerRejected as error:
        if error.retryable:  # 408, 425, 429: "not now" rather than "no"
            return (
                body,
                payments.charge_unavailable(payment, str(error), now, attempts=attempts),
                retry_seconds,
            )
        # A 4xx is an answer: the request itself is refused (a bad amount, a key conflict). Final.
        return body, payments.charge_failed(payment, str(error), now, attempts=attempts), None
    except errors.PartnerError as error:
        # A garbled answer may hide a charge that went through: treat it like an unknown outcome and
        # ask again under the same key later.
        return body, payments.charge_unavailable(payment, str(error), now, attempts=attempts), retry_seconds
    if charge.approved:
        return body, payments.charge_approved(payment, charge.id, now, attempts=attempts), None
    reason = charge.reason or "declined"
    return body, payments.charge_declined(payment, charge.id, reason, now, attempts=attempts), None


_KIND = owned.Kind(
    name="Payment",
    resource=RESOURCE,
    known=lambda ctx: ctx.payments,
    retry_seconds=lambda ctx: ctx.settings.payment_retry_seconds,
    run=_pass,
)
