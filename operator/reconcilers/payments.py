"""What a Payment should do next and how each answer of the payment system changes its status.

A Payment is one charge (a billing period, or a fee). Without a refund request it wants the charge made
(while it is Pending or Deferred, and again when its Rental raises `spec.attempt` after a decline); with
one (`spec.refund`, set by its Rental on cancellation or rejection) it wants the money back: a refund
when approved, nothing when already settled, and for a charge never answered either nothing (no request
ever left: `attempts` is 0, written before the first request goes out) or first learning the outcome by
repeating the charge under the same idempotency key, which the payment system answers from its record
instead of charging again.

Each answer, and each way a request can fail, leads to a status and to when to call again: an
approval, a decline or a refused request (a 4xx other than "later") is final; anything that may hide a
charge (no answer, a garbled one) or means "not now" (408, 425, 429, an open breaker) defers and asks
again under the same key; a request that surely never arrived is not counted as an attempt. A refund
that cannot be made now stays requested and is retried, slowly when it was refused outright.

Pure functions over the models; the Payment controller makes the calls, translates the partner
client's exceptions into `Failure`, and writes the statuses.
"""

from __future__ import annotations

import datetime
import enum
from typing import NamedTuple

from rental_operator.api import conditions as api_conditions
from rental_operator.api import payment as api_payment
from rental_operator.reconcilers import conditions

__all__ = [
    "BREAKER_OPEN",
    "Call",
    "Failure",
    "Outcome",
    "charge_answered",
    "charge_approved",
    "charge_declined",
    "charge_failed",
    "charge_starting",
    "charge_unavailable",
    "charge_went_wrong",
    "is_new_attempt",
    "next_call",
    "refund_done",
    "refund_unavailable",
    "refund_went_wrong",
    "refund_without_transaction",
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


class Failure(enum.StrEnum):
    """How a request to the payment system went wrong, in the terms the decision needs (the controller
    translates the partner client's exceptions, drawn in `partners.errors`)."""

    NOT_SENT = "not-sent"  # the circuit breaker refused the call: no request was made
    NOT_ARRIVED = "not-arrived"  # a fault before the request could arrive (refused connection)
    NO_ANSWER = "no-answer"  # a fault after it may have arrived (timeout, 5xx): it may have charged
    LATER = "later"  # a 4xx meaning "not now" (408, 425, 429)
    REFUSED = "refused"  # any other 4xx: the request itself is refused (a bad amount, a key conflict)
    GARBLED = "garbled"  # an answer that breaks the contract: it may hide a charge that went through


class Outcome(NamedTuple):
    """The status a call leads to, and after how many seconds to call again (None: no retry)."""

    status: api_payment.PaymentStatus
    retry_after: float | None


# Said when the breaker is known to be open before any call: pay later without a request.
BREAKER_OPEN = "payment system unavailable: circuit breaker open"
_UNAVAILABLE = frozenset({Failure.NOT_SENT, Failure.NOT_ARRIVED, Failure.NO_ANSWER})
# A refund refused outright needs a person: keep asking, this many times more slowly, and say why.
_REFUSED_REFUND_SLOWDOWN = 6


def is_new_attempt(payment: api_payment.Payment) -> bool:
    """Whether the Rental asked for another attempt at a charge the payment system refused (dunning).

    The previous attempt's answer is final under its key (a repeated key replays the decline), so the
    new attempt is a charge of its own, made under the key of its attempt number.
    """
    return (
        not payment.spec.refund
        and payment.status.phase in (Phase.DECLINED, Phase.FAILED)
        and payment.spec.attempt > (payment.status.attempt or 1)
    )


def next_call(payment: api_payment.Payment) -> Call | None:
    phase, status = payment.status.phase, payment.status
    if is_new_attempt(payment):
        return Call.CHARGE
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
    """Written before the first charge request of an attempt leaves, so a later refund knows one may have.

    Later requests of the same attempt are counted in the status that records their outcome
    (`attempts=` of the other functions): only the first needs its own write, since only "none at
    all" allows a void. A new attempt after a decline starts over: Pending, its own attempt number
    (whose key the request is sent under), nothing of the declined attempt's answer kept but its
    reason in the condition history.
    """
    if is_new_attempt(payment):
        return _with(
            payment,
            now,
            phase=Phase.PENDING,
            attempt=payment.spec.attempt,
            attempts=1,
            transaction_id=None,
            paid=(False, Reason.PAYMENT_PENDING, f"charge requested (attempt {payment.spec.attempt})"),
            ready=(False, Reason.PAYMENT_PENDING, f"charge requested (attempt {payment.spec.attempt})"),
        )
    if payment.status.attempts > 0:
        return None
    return _with(
        payment,
        now,
        phase=payment.status.phase or Phase.PENDING,
        attempt=payment.spec.attempt,
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


# --- answers and failures: the status each leads to, and when to call again ----------------------------
def charge_answered(
    payment: api_payment.Payment,
    *,
    approved: bool,
    transaction_id: str,
    reason: str | None,
    now: datetime.datetime,
    attempts: int,
) -> Outcome:
    """The payment system answered the charge: approved or declined, final either way."""
    if approved:
        return Outcome(charge_approved(payment, transaction_id, now, attempts=attempts), None)
    declined = charge_declined(payment, transaction_id, reason or "declined", now, attempts=attempts)
    return Outcome(declined, None)


def charge_went_wrong(
    payment: api_payment.Payment,
    failure: Failure,
    message: str,
    now: datetime.datetime,
    *,
    attempts: int,
    retry_seconds: float,
    retry_after: float = 0.0,
) -> Outcome:
    """A charge request failed. `attempts` counts this request; `retry_after` is the breaker's wait.

    Only a refusal is final. A request never made keeps the count as recorded (the write-ahead's
    included); one that surely never arrived is not counted, which keeps a later cancellation free of
    any call; everything else may have charged, so it counts, defers, and asks again under the same
    key (the payment system answers a repeated key from its record).
    """
    match failure:
        case Failure.REFUSED:
            return Outcome(charge_failed(payment, message, now, attempts=attempts), None)
        case Failure.NOT_SENT:
            if is_new_attempt(payment):
                # The retry the Rental asked for did not leave: it is now the attempt to make (under its
                # own key once it can), with no request of its own yet; the declined one is done with.
                started = payment.model_copy(
                    update={
                        "status": payment.status.model_copy(
                            update={"attempt": payment.spec.attempt, "attempts": 0, "transaction_id": None}
                        )
                    }
                )
                deferred = charge_unavailable(started, message, now, attempts=0)
            else:
                deferred = charge_unavailable(payment, message, now, attempts=payment.status.attempts)
            return Outcome(deferred, max(retry_after, retry_seconds))
        case Failure.NOT_ARRIVED:
            return Outcome(charge_unavailable(payment, message, now, attempts=attempts - 1), retry_seconds)
        case _:
            return Outcome(charge_unavailable(payment, message, now, attempts=attempts), retry_seconds)


def refund_without_transaction(payment: api_payment.Payment, now: datetime.datetime) -> Outcome:
    """Approved without a transaction id cannot come from a payment system keeping the contract; a
    person has to look, the refund stays requested (and is not retried on its own)."""
    return Outcome(refund_unavailable(payment, "approved charge has no transaction id", now), None)


def refund_went_wrong(
    payment: api_payment.Payment,
    failure: Failure,
    message: str,
    now: datetime.datetime,
    *,
    retry_seconds: float,
) -> Outcome:
    """A refund request failed: it stays requested; retried soon after a fault, slowly after an answer."""
    if failure in _UNAVAILABLE:
        return Outcome(refund_unavailable(payment, message, now), retry_seconds)
    refused = refund_unavailable(payment, f"refused: {message}", now)
    return Outcome(refused, retry_seconds * _REFUSED_REFUND_SLOWDOWN)
