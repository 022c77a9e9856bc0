"""What a Payment should do next and how each answer of the payment system changes its status.

A Payment is one charge. Without a refund request it wants the charge made (while it is Pending or
Deferred); with one (`spec.refund`, set by its Rental on cancellation or rejection) it wants the money
back: a refund when approved, nothing when already settled, and for a charge never answered either
nothing (no request ever left: `attempts` is 0, written before the first request goes out) or first
learning the outcome by repeating the charge under the same idempotency key, which the payment system
answers from its record instead of charging again.

Pure functions over the models; the Payment handler makes the calls and writes the statuses.
"""

from __future__ import annotations

import datetime
import enum

from rental_operator.api import conditions as api_conditions
from rental_operator.api import payment as api_payment
from rental_operator.reconcilers import conditions

__all__ = [
    "Call",
    "charge_approved",
    "charge_declined",
    "charge_failed",
    "charge_starting",
    "charge_unavailable",
    "next_call",
    "refund_done",
    "refund_unavailable",
    "voided",
]

Phase = api_payment.PaymentPhase
Type = api_conditions.ConditionType
Reason = api_conditions.Reason
_SETTLED = frozenset({Phase.DECLINED, Phase.REFUNDED, Phase.FAILED})


class Call(enum.StrEnum):
    CHARGE = "charge"
    REFUND = "refund"
    VOID = "void"  # refund requested before any charge request left: settle without a call


def next_call(payment: api_payment.Payment) -> Call | None:
    phase, status = payment.status.phase, payment.status
    if phase in _SETTLED:
        return None
    if not payment.spec.refund:
        return Call.CHARGE if phase in (None, Phase.PENDING, Phase.DEFERRED) else None
    if phase in (Phase.APPROVED, Phase.REFUNDING):
        return Call.REFUND
    return Call.CHARGE if status.attempts > 0 else Call.VOID


def _with(
    payment: api_payment.Payment,
    now: datetime.datetime,
    *,
    phase: Phase,
    paid: tuple[bool, str, str] | None = None,
    refunded: tuple[bool, str, str] | None = None,
    ready: tuple[bool, str, str] | None = None,
    **fields: object,
) -> api_payment.PaymentStatus:
    status = payment.status.model_copy(update={"phase": phase, **fields})
    for type_, value in ((Type.PAID, paid), (Type.REFUNDED, refunded), (Type.READY, ready)):
        if value is not None:
            status.conditions = conditions.set_condition(
                status.conditions,
                type_=type_,
                status=value[0],
                reason=value[1],
                message=value[2],
                generation=payment.metadata.generation,
                now=now,
            )
    return status


def charge_starting(payment: api_payment.Payment, now: datetime.datetime) -> api_payment.PaymentStatus | None:
    """Written before the first charge request leaves, so a later refund knows one may have.

    Later attempts are counted in the status that records their outcome (`attempts=` of the other
    functions): only the first needs its own write, since only "none at all" allows a void.
    """
    if payment.status.attempts > 0:
        return None
    return _with(
        payment,
        now,
        phase=payment.status.phase or Phase.PENDING,
        attempts=1,
        paid=(False, Reason.PAYMENT_PENDING, "charge requested"),
        ready=(False, Reason.PAYMENT_PENDING, "charge requested"),
    )


def charge_approved(
    payment: api_payment.Payment, transaction_id: str, now: datetime.datetime, *, attempts: int
) -> api_payment.PaymentStatus:
    return _with(
        payment,
        now,
        phase=Phase.APPROVED,
        transaction_id=transaction_id,
        approved_at=payment.status.approved_at or now,
        attempts=attempts,
        last_error=None,
        paid=(True, Reason.PAYMENT_APPROVED, f"transaction {transaction_id}"),
        ready=(True, Reason.PAYMENT_APPROVED, "approved"),
    )


def charge_declined(
    payment: api_payment.Payment,
    transaction_id: str | None,
    reason: str,
    now: datetime.datetime,
    *,
    attempts: int,
) -> api_payment.PaymentStatus:
    return _with(
        payment,
        now,
        phase=Phase.DECLINED,
        transaction_id=transaction_id,
        attempts=attempts,
        last_error=reason,
        paid=(False, Reason.PAYMENT_DECLINED, reason),
        ready=(False, Reason.PAYMENT_DECLINED, reason),
    )


def charge_failed(
    payment: api_payment.Payment, error: str, now: datetime.datetime, *, attempts: int
) -> api_payment.PaymentStatus:
    """The payment system refused the request itself (a 4xx other than a decline): retrying won't help."""
    return _with(
        payment,
        now,
        phase=Phase.FAILED,
        attempts=attempts,
        last_error=error,
        paid=(False, Reason.PAYMENT_FAILED, error),
        ready=(False, Reason.PAYMENT_FAILED, error),
    )


def charge_unavailable(
    payment: api_payment.Payment, error: str, now: datetime.datetime, *, attempts: int
) -> api_payment.PaymentStatus:
    """Pay later: the charge is retried when the payment system recovers."""
    return _with(
        payment,
        now,
        phase=Phase.DEFERRED,
        attempts=attempts,
        last_error=error,
        paid=(False, Reason.PAYMENT_DEFERRED, error),
        ready=(False, Reason.PAYMENT_DEFERRED, "waiting for the payment system to recover"),
    )


def refund_done(payment: api_payment.Payment, now: datetime.datetime) -> api_payment.PaymentStatus:
    return _with(
        payment,
        now,
        phase=Phase.REFUNDED,
        refunded_at=payment.status.refunded_at or now,
        last_error=None,
        paid=(False, Reason.REFUNDED, "the charge was refunded"),
        refunded=(True, Reason.REFUNDED, "the charge was refunded"),
        ready=(False, Reason.REFUNDED, "refunded"),
    )


def refund_unavailable(
    payment: api_payment.Payment, error: str, now: datetime.datetime
) -> api_payment.PaymentStatus:
    """The refund could not be made now; it stays requested and is retried."""
    return _with(
        payment,
        now,
        phase=Phase.REFUNDING,
        last_error=error,
        refunded=(False, Reason.REFUNDING, f"retrying: {error}"),
    )


def voided(payment: api_payment.Payment, now: datetime.datetime) -> api_payment.PaymentStatus:
    """Refund requested before any charge request was sent: nothing to give back, nothing will be taken."""
    return _with(
        payment,
        now,
        phase=Phase.REFUNDED,
        refunded_at=payment.status.refunded_at or now,
        paid=(False, Reason.NOT_CHARGED, "cancelled before any charge was made"),
        refunded=(True, Reason.NOT_CHARGED, "nothing was charged"),
        ready=(False, Reason.NOT_CHARGED, "cancelled before any charge was made"),
    )
