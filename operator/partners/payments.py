"""The operator's client of the payment partner (CONTRACT §2 "Payments"), behind a circuit breaker.

Called by the Payment controller (`controllers.payments`) on the scheduler's worker threads: `charge`
for a Payment's charge, `refund` when the Payment is asked for its money back (`spec.refund`); `get`
reads a payment back (the controller learns an unknown outcome by repeating the charge instead). One
`PaymentClient` is built at start-up (into `controllers.context`) and shared by every worker. The
client never retries on its own: whether and when to call again is the controller's decision
(`reconcilers.payments`), and a call repeated after a fault or a lost answer carries the same
Idempotency-Key.

How its outcomes map onto what the operator does:

- `Charge` with status `approved` or `declined`: an answer. A decline is final and is not an error.
- `errors.PartnerUnavailable` (including `errors.BreakerOpen`): "pay later". Retry later with the SAME
  idempotency key and the SAME amount, currency, customer and reference: the partner then either
  charges once or replays its first answer. When `outcome_unknown` is True the charge may already
  exist; the retry is also the only way to learn its id.
- `errors.PartnerRejected` (4xx): final for this request, unless `retryable` (408/425/429).
  `errors.IdempotencyConflict` means the retry did not repeat the first request exactly: a bug.
- `errors.PartnerProtocolError`: the partner broke the contract; a human has to look.

Refunds go through the same breaker: it is the same partner, and a refund sent into an outage would
only add to it. While the breaker is open a refund raises `errors.BreakerOpen` like a charge does; the
caller must keep the refund requested (Payment phase `Refunding`) and retry it, under its own stable
key (`transport.derive_key(charge_key, "refund")`), until it is answered: money taken is never left
behind because the partner was down.

Metrics stay out of this module: `observe(operation, outcome, seconds)` is called once per call
(operation `charge`/`refund`/`get`; outcome one of `Outcome`, `breaker_open` for calls the breaker
refused without a request), and `breaker_listener(old, new)` on every breaker transition.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from types import TracebackType
from typing import Annotated, Final, Literal, Self, TypeVar

import pydantic

from rental_operator import config
from rental_operator.partners import breakers, errors, transport

__all__ = [
    "PARTNER",
    "Charge",
    "Observer",
    "Operation",
    "Outcome",
    "PaymentClient",
    "PaymentRecord",
    "Refund",
    "outcome_of_error",
]

PARTNER: Final = "payments"

Operation = Literal["charge", "refund", "get"]
Outcome = Literal[
    "approved",  # charge answered: approved
    "declined",  # charge answered: declined
    "refunded",  # refund answered
    "found",  # get answered
    "rejected",  # 4xx
    "protocol_error",  # an answer the contract does not allow
    "timeout",
    "connection_error",
    "tls_error",  # the handshake failed: an unverifiable certificate, a protocol mismatch
    "server_error",  # 5xx
    "breaker_open",  # refused by the breaker; no request was sent
    "error",  # anything else (configuration, a bug)
]
Observer = Callable[[Operation, Outcome, float], None]

_CURRENCY = re.compile(r"[A-Z]{3}")

_UNAVAILABLE_OUTCOMES: dict[errors.UnavailableKind, Outcome] = {
    "timeout": "timeout",
    "connection": "connection_error",
    "tls": "tls_error",
    "server_error": "server_error",
    "breaker_open": "breaker_open",
}

T = TypeVar("T")

NonEmpty = Annotated[str, pydantic.StringConstraints(min_length=1)]


class Charge(transport.PartnerModel):
    """The answer to a charge: `POST /v1/payments` -> 201."""

    id: NonEmpty
    status: Literal["approved", "declined"]
    amount: int
    currency: str
    reason: str | None = None

    @property
    def approved(self) -> bool:
        return self.status == "approved"


class PaymentRecord(transport.PartnerModel):
    """A payment as `GET /v1/payments/{id}` shows it now (it may have been refunded since)."""

    id: NonEmpty
    status: Literal["approved", "declined", "refunded"]
    amount: int
    currency: str
    reason: str | None = None


class Refund(transport.PartnerModel):
    """The answer to a refund: `POST /v1/payments/{id}/refund` -> 200. `id` is the payment's."""

    id: NonEmpty
    status: Literal["refunded"]


def _no_observer(operation: Operation, outcome: Outcome, seconds: float) -> None:
    pass


class PaymentClient:
    """Charges, refunds and reads payments; thread-safe; one per operator process."""

    def __init__(
        self,
        settings: config.Settings,
        *,
        breaker_listener: breakers.StateListener | None = None,
        observe: Observer = _no_observer,
        pool_size: int = transport.POOL_SIZE,
    ) -> None:
        seconds = settings.payment_timeout_seconds
        self._transport = transport.Transport(
            partner=PARTNER,
            base_url=str(settings.payment_url),
            api_key=settings.payment_api_key,
            timeout=transport.Timeout(connect=seconds, read=seconds),
            pool_size=pool_size,
            ca_bundle=settings.ca_bundle(PARTNER),
        )
        self._breaker = breakers.Breaker(
            partner=PARTNER,
            failure_threshold=settings.breaker_failure_threshold,
            reset_seconds=settings.breaker_reset_seconds,
            on_state_change=breaker_listener,
        )
        self._observe = observe

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    def breaker_state(self) -> breakers.BreakerState:
        return self._breaker.state

    def charge(
        self, *, amount: int, currency: str, customer_id: str, reference: str, idempotency_key: str
    ) -> Charge:
        """Charge `amount` (minor units of `currency`) once per `idempotency_key`."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValueError("amount must be a positive integer in minor units")
        if not _CURRENCY.fullmatch(currency):
            raise ValueError(f"currency must be an ISO 4217 code of three capital letters, not {currency!r}")
        if not customer_id or not reference:
            raise ValueError("customer_id and reference must not be empty")
        transport.check_idempotency_key(idempotency_key)
        body = {"amount": amount, "currency": currency, "customerId": customer_id, "reference": reference}

        def send() -> Charge:
            answer = self._transport.post("v1/payments", body, idempotency_key=idempotency_key, creates=True)
            charge = self._transport.decode(answer, Charge)
            if (charge.amount, charge.currency) != (amount, currency):
                # Either the partner or the key's first use disagrees with this charge: never guess.
                raise errors.PartnerProtocolError(
                    f"{PARTNER} answered a charge of {amount} {currency} with "
                    f"{charge.amount} {charge.currency} (payment {charge.id})",
                    partner=PARTNER,
                    status_code=answer.status,
                )
            return charge

        return self._guarded("charge", send, lambda charge: charge.status)

    def refund(self, payment_id: str, *, idempotency_key: str) -> Refund:
        """Refund the whole payment; refunding an already refunded payment answers the same."""
        path = f"v1/payments/{transport.path_segment(payment_id)}/refund"
        transport.check_idempotency_key(idempotency_key)

        def send() -> Refund:
            answer = self._transport.post(path, {}, idempotency_key=idempotency_key, creates=False)
            return self._transport.decode(answer, Refund)

        return self._guarded("refund", send, lambda refund: "refunded")

    def get(self, payment_id: str) -> PaymentRecord:
        path = f"v1/payments/{transport.path_segment(payment_id)}"

        def send() -> PaymentRecord:
            return self._transport.decode(self._transport.get(path), PaymentRecord)

        return self._guarded("get", send, lambda record: "found")

    def _guarded(self, operation: Operation, send: Callable[[], T], outcome: Callable[[T], Outcome]) -> T:
        started = time.monotonic()
        try:
            result = self._breaker.call(send)
        except BaseException as error:
            self._report(operation, outcome_of_error(error), started)
            raise
        self._report(operation, outcome(result), started)
        return result

    def _report(self, operation: Operation, outcome: Outcome, started: float) -> None:
        try:
            self._observe(operation, outcome, time.monotonic() - started)
        except Exception:
            # A broken metrics hook must not break payments.
            logging.getLogger(__name__).exception("the payments observe hook failed")


def outcome_of_error(error: BaseException) -> Outcome:
    """The metrics label of a failed call."""
    if isinstance(error, errors.PartnerUnavailable):
        return _UNAVAILABLE_OUTCOMES[error.kind]
    if isinstance(error, errors.PartnerRejected):
        return "rejected"
    if isinstance(error, errors.PartnerProtocolError):
        return "protocol_error"
    return "error"
