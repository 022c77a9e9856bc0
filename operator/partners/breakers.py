"""The circuit breaker in front of a partner: stop calling it while it is failing, try again later.

CONTRACT §2/§3: after `RENTAL_BREAKER_FAILURE_THRESHOLD` consecutive faults (`errors.PartnerUnavailable`:
5xx, timeout, connection failure; and `errors.UnacceptableAnswer`: an answer too large to read or
compressed unasked) the breaker opens and calls fail at once with `errors.BreakerOpen`, without a
request; after `RENTAL_BREAKER_RESET_SECONDS` one trial call goes through (half-open), and its outcome
closes or re-opens the breaker. A 4xx answer, a decline or a malformed answer is not a fault: the
partner is up and answering. Used by `payments.PaymentClient`; the operator shows the
state as the `rental_payment_breaker_state` gauge through the `on_state_change` callback.

The state machine is pybreaker's (`CircuitBreaker` with `exclude` deciding what counts, its listeners
reporting transitions). What is not pybreaker's is the admission: pybreaker's `call` holds the
breaker's lock for the whole guarded call, so every call through one breaker would run one after
another (danielfm/pybreaker#3; the pull requests lifting it, #40, #41, #57 and #77, were closed
unmerged), which would serialize all of the scheduler's worker threads behind one slow payment. So
`Breaker` asks first (`admit`, under its own short lock, raising `BreakerOpen` while open), makes the
call with no lock held, and then replays the outcome through pybreaker's `call` (`record`), which
counts it, trips or closes the breaker and notifies the listeners. Two consequences, both deliberate:

- half-open admits exactly one trial at a time; other callers get `BreakerOpen(retry_after=0)`;
- once the reset time is over, reading `state` already moves the breaker to half-open (pybreaker
  waits for the next call), so a caller that checks the state before calling still gets its trial;
- an outcome that arrives after the breaker has moved on (a call admitted while closed that returns
  when the breaker is already open) is not counted: the state it would have informed is gone.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
from collections.abc import Callable
from typing import Literal, TypeVar

import pybreaker

from rental_operator.partners import errors

__all__ = ["Breaker", "BreakerState", "StateListener", "Ticket"]

BreakerState = Literal["closed", "half-open", "open"]
StateListener = Callable[[BreakerState, BreakerState], None]  # (old, new)

_STATES: dict[str, BreakerState] = {"closed": "closed", "half-open": "half-open", "open": "open"}

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Ticket:
    """Permission for one call; `trial` when it is the half-open breaker's single trial call."""

    trial: bool


class Breaker:
    """One partner's breaker; thread-safe, calls run concurrently while it is closed."""

    def __init__(
        self,
        *,
        partner: str,
        failure_threshold: int,
        reset_seconds: float,
        on_state_change: StateListener | None = None,
    ) -> None:
        if failure_threshold < 1 or reset_seconds <= 0:
            raise ValueError("a breaker needs failure_threshold >= 1 and reset_seconds > 0")
        self.partner = partner
        self._lock = threading.Lock()
        self._trial_in_flight = False
        self._storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=failure_threshold,
            reset_timeout=reset_seconds,
            exclude=[_is_an_answer],
            listeners=[_Listener(self, on_state_change)],
            state_storage=self._storage,
            name=partner,
            # Re-raise the partner's own error on the call that trips the breaker: it carries
            # `outcome_unknown`, which the caller needs for exactly that call.
            throw_new_error_on_trip=False,
        )

    @property
    def state(self) -> BreakerState:
        """The state a call would meet now: an open breaker whose reset time is over is half-open.

        pybreaker leaves it "open" until the next call; reporting (and moving to) half-open here
        matters to a caller that checks the state before calling: it would otherwise never call,
        and the breaker would never get its trial.
        """
        with self._lock:
            self._half_open_when_due()
            return _STATES[self._storage.state]

    @property
    def failure_threshold(self) -> int:
        return int(self._breaker.fail_max)

    @property
    def reset_seconds(self) -> float:
        return float(self._breaker.reset_timeout)

    def call(self, function: Callable[[], T]) -> T:
        """`function()` if the breaker admits it, with its outcome recorded; else `BreakerOpen`."""
        ticket = self.admit()
        try:
            result = function()
        except (errors.PartnerUnavailable, errors.PartnerRejected, errors.PartnerProtocolError) as error:
            self.record(ticket, error)
            raise
        except BaseException:
            # Not the partner's doing (a bug, bad configuration, an interrupt): it says nothing
            # about the partner, so it neither counts nor resets the count.
            self.release(ticket)
            raise
        self.record(ticket, None)
        return result

    def admit(self) -> Ticket:
        """A ticket for one call, or `BreakerOpen` (no request may be sent)."""
        with self._lock:
            self._half_open_when_due()
            state = self._storage.state
            if state == pybreaker.STATE_CLOSED:
                return Ticket(trial=False)
            if state == pybreaker.STATE_OPEN:
                remaining = self._remaining_open_seconds()
                raise errors.BreakerOpen(
                    f"the {self.partner} circuit breaker is open after {self.failure_threshold} "
                    f"consecutive failures; next trial call in {remaining:.1f}s",
                    partner=self.partner,
                    retry_after=remaining,
                )
            if self._trial_in_flight:
                raise errors.BreakerOpen(
                    f"the {self.partner} circuit breaker is half-open and its trial call is in flight",
                    partner=self.partner,
                    retry_after=0.0,
                )
            self._trial_in_flight = True
            return Ticket(trial=True)

    def record(self, ticket: Ticket, error: BaseException | None) -> None:
        """Count the outcome of an admitted call: `None` for success, else the partner error raised."""
        with self._lock:
            if ticket.trial:
                self._trial_in_flight = False
            expected = pybreaker.STATE_HALF_OPEN if ticket.trial else pybreaker.STATE_CLOSED
            if self._storage.state != expected:
                return  # the breaker moved on while this call was out
            traceback = error.__traceback__ if error is not None else None
            try:
                self._breaker.call(_replay, error)
            except BaseException as raised:
                if raised is not error:
                    raise
            finally:
                if error is not None:
                    error.__traceback__ = traceback  # pybreaker re-raised it; keep the caller's frames

    def release(self, ticket: Ticket) -> None:
        """Give a ticket back without an outcome; a released trial lets the next caller try."""
        if ticket.trial:
            with self._lock:
                self._trial_in_flight = False

    def _half_open_when_due(self) -> None:
        if self._storage.state == pybreaker.STATE_OPEN and self._remaining_open_seconds() <= 0:
            self._breaker.half_open()

    def _remaining_open_seconds(self) -> float:
        opened_at = self._storage.opened_at
        if opened_at is None:
            return 0.0
        reopens = opened_at + datetime.timedelta(seconds=self.reset_seconds)
        return max(0.0, (reopens - datetime.datetime.now(datetime.UTC)).total_seconds())


def _is_an_answer(error: BaseException) -> bool:
    """pybreaker's `exclude`: True for what is not a fault (4xx, declines, malformed answers)."""
    return not isinstance(error, errors.PartnerUnavailable | errors.UnacceptableAnswer)


def _replay(error: BaseException | None) -> None:
    if error is not None:
        raise error


class _Listener(pybreaker.CircuitBreakerListener):
    def __init__(self, breaker: Breaker, callback: StateListener | None) -> None:
        self._breaker = breaker
        self._callback = callback

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        if old_state is None or old_state.name == new_state.name:
            return
        old, new = _STATES[old_state.name], _STATES[new_state.name]
        partner = self._breaker.partner
        if new == "open":
            logger.warning(
                "%s circuit breaker %s -> open: calls fail fast for %ss",
                partner,
                old,
                self._breaker.reset_seconds,
            )
        else:
            logger.info("%s circuit breaker %s -> %s", partner, old, new)
        if self._callback is not None:
            try:
                self._callback(old, new)
            except Exception:
                # A broken metrics hook must not break payments.
                logger.exception("the %s breaker state listener failed", partner)
