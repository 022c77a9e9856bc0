"""What can go wrong when the operator calls a partner, as exceptions that say what to do next.

Every client in this package raises only these (plus `ValueError` for arguments that are the caller's
bug, such as an empty idempotency key). The split follows CONTRACT §2: a 4xx is an answer, a 5xx, a
timeout or a refused connection is a fault, and only faults count for the circuit breaker. One
protocol error counts too: an answer too large to read (or compressed unasked) costs the operator as
much as an outage would, and a partner that sends one tends to send it again::

    PartnerError                  base: anything a partner call can raise
    ├── PartnerUnavailable        a fault: 5xx, timeout, refused/reset/dropped connection, failed TLS
    │   │                         handshake (an unverifiable certificate included). Defer and retry
    │   │                         later with the SAME idempotency key. `outcome_unknown` says whether the
    │   │                         request may have reached the partner and taken effect.
    │   └── BreakerOpen           raised without any network call while the breaker is open (or while
    │                             its single half-open trial is in flight); never has an effect.
    ├── PartnerRejected           a 4xx: the partner answered and said no. Carries `status_code` and the
    │   │                         partner's `error` message. Final for this request, except the few
    │   │                         statuses in `retryable` (408, 425, 429) which mean "later".
    │   ├── IdempotencyConflict   409 for a key already used with a different request: a caller bug.
    │   └── StateConflict         409 for an action the object's current state forbids (refund of a
    │                             declined payment, cancel of a delivered shipment).
    └── PartnerProtocolError      the partner answered in a way the contract does not allow: a 2xx whose
        │                         body lacks a field or has an unknown status, a non-JSON body, a 3xx.
        └── UnacceptableAnswer    an answer the transport would not read: bigger than it accepts, or in
                                  a content encoding it did not ask for. Unlike its parent a fault for
                                  the breaker, with `outcome_unknown` like `PartnerUnavailable`'s.

A declined payment is none of these: it is a `payments.Charge` with status `declined`.

Raised by `transport` (classification of HTTP answers), `breakers` (`BreakerOpen`) and the clients in
`payments`, `shipping` and `sms`; caught by the operator's handlers.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "RETRYABLE_REJECTIONS",
    "BreakerOpen",
    "IdempotencyConflict",
    "PartnerError",
    "PartnerProtocolError",
    "PartnerRejected",
    "PartnerUnavailable",
    "StateConflict",
    "UnacceptableAnswer",
    "UnavailableKind",
]

# "Too early / too many / took too long": 4xx answers that mean "ask again later", not "no".
RETRYABLE_REJECTIONS = frozenset({408, 425, 429})

# `tls`: the handshake failed, typically a certificate the configured CA bundle does not vouch for.
UnavailableKind = Literal["timeout", "connection", "tls", "server_error", "breaker_open"]


class PartnerError(Exception):
    """Base of everything a partner call raises; `partner` is `payments`, `shipping` or `sms`."""

    def __init__(self, message: str, *, partner: str) -> None:
        super().__init__(message)
        self.message = message
        self.partner = partner


class PartnerUnavailable(PartnerError):  # noqa: N818  # names from the design: an outcome, not a bug
    """A fault (5xx, timeout, connection failure); counts as a failure for the circuit breaker.

    `outcome_unknown` is True when the request may have reached the partner and taken effect: a read
    timeout, a connection dropped after sending, or a 5xx answer to a POST. Retrying with the same
    Idempotency-Key is always safe and is the only way to learn the outcome. It is False when the
    request certainly never left (refused connection, connect timeout, open breaker) and for GETs,
    which have no effect.
    """

    def __init__(
        self,
        message: str,
        *,
        partner: str,
        kind: UnavailableKind,
        outcome_unknown: bool,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, partner=partner)
        self.kind: UnavailableKind = kind
        self.outcome_unknown = outcome_unknown
        self.status_code = status_code


class BreakerOpen(PartnerUnavailable):
    """The circuit breaker refused the call; no request was sent.

    `retry_after` is the number of seconds until the breaker lets a trial call through (0 when a
    trial is due but another thread's trial is in flight).
    """

    def __init__(self, message: str, *, partner: str, retry_after: float) -> None:
        super().__init__(message, partner=partner, kind="breaker_open", outcome_unknown=False)
        self.retry_after = retry_after


class PartnerRejected(PartnerError):  # noqa: N818  # an answer, not an error of ours
    """A 4xx answer: the partner understood the request and refused it. Not a breaker failure."""

    def __init__(self, message: str, *, partner: str, status_code: int, error: str) -> None:
        super().__init__(message, partner=partner)
        self.status_code = status_code
        self.error = error

    @property
    def retryable(self) -> bool:
        """True for 408, 425 and 429: not a refusal of the request, a request to come back later."""
        return self.status_code in RETRYABLE_REJECTIONS


class IdempotencyConflict(PartnerRejected):
    """409: the Idempotency-Key was already used with a different request (method, path or body)."""


class StateConflict(PartnerRejected):
    """409 to an action: the object's current state does not allow it (e.g. cancel after delivery)."""


class PartnerProtocolError(PartnerError):
    """The partner's answer breaks the contract (unexpected body, status or content); not retryable.

    `status_code` is the HTTP status of that answer (None if the body could not even be read). A 2xx
    here means the request did take effect (a retry with the same key replays the same answer), so a
    human has to look at the partner.
    """

    def __init__(self, message: str, *, partner: str, status_code: int | None) -> None:
        super().__init__(message, partner=partner)
        self.status_code = status_code


class UnacceptableAnswer(PartnerProtocolError):  # noqa: N818  # an answer, like its siblings
    """An answer the transport stopped reading: over its size cap, or content-encoded without being asked.

    A protocol error (the contract's answers are small, plain JSON), but one that counts as a fault
    for the circuit breaker: such an answer is what a broken proxy or a hostile partner sends on
    every call, and each costs a worker and a connection. `status_code` is the answer's status, whose
    body was not read; `outcome_unknown` is True for a POST, as for a fault: the request left and
    whatever the answer said is unknown (with a 2xx it did take effect), so the caller retries under
    the same Idempotency-Key.
    """

    def __init__(self, message: str, *, partner: str, status_code: int, outcome_unknown: bool) -> None:
        super().__init__(message, partner=partner, status_code=status_code)
        self.outcome_unknown = outcome_unknown
