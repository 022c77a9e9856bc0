"""What a Rental should do next, decided from what is observed: the saga's brain, as a pure function.

`decide` looks at one Rental together with its Purifier, Payment and Delivery (as observed now) and
returns a `Plan`: the actions to take (each idempotent: reserve, release, create the Payment, request a
refund, create or stop the Delivery, manage the finalizer), the status the Rental should have, and the
Events to record. The handler executes the actions, feeds their results back in as new facts and asks
again, until no action is left, then writes the status once. Nothing here talks to Kubernetes or to a
partner, so every path of the saga is unit-tested without a cluster.

The Payment and Delivery are found by name (the rental's own), and the name alone proves nothing: a
leftover of a deleted Rental of the same name, or an object made by hand, would otherwise confirm and
ship a rental that reserved nothing and paid nothing. `payment_mismatch` and `delivery_mismatch` tell
the rental's own from such a stranger (controlling owner uid, then the spec the rental expects); the
controller passes only the rental's own as `Facts.payment` / `Facts.delivery` and a stranger as the
reason it is not, and `decide` reports it (a condition and a Warning Event) and waits: it cannot
create its own under a taken name, and waiting resolves the common case by itself, since garbage
collection removes a leftover whose owner was deleted; one made by hand waits for a person.

Decisions only move forward: a stale observation of a sibling (a Payment still `Pending` in the cache
after it was approved) can delay a step but never undo one, and a terminal phase (`Rejected`,
`Cancelled`) is never left. Compensation is tolerant: each step checks whether there is anything to
undo, so a rental rejected or cancelled before a step ran skips that step.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from rental_operator.api import conditions as api_conditions
from rental_operator.api import delivery as api_delivery
from rental_operator.api import payment as api_payment
from rental_operator.api import purifier as api_purifier
from rental_operator.api import rental as api_rental
from rental_operator.reconcilers import conditions, stock

__all__ = [
    "FINALIZER",
    "MISMATCH_RECHECK_SECONDS",
    "RESTING_PHASES",
    "Action",
    "AddFinalizer",
    "CreateDelivery",
    "CreatePayment",
    "Event",
    "Facts",
    "Plan",
    "Release",
    "RemoveFinalizer",
    "RequestRefund",
    "Reserve",
    "StopDelivery",
    "controller_uid",
    "decide",
    "delivery_mismatch",
    "idempotency_key",
    "is_resting",
    "payment_mismatch",
]

# Held while the rental may have something to undo (a reserved unit, a charge, a shipment), so that
# deleting an in-force rental runs its compensation before the object goes away.
FINALIZER = "rental.purifier.io/compensation"

Phase = api_rental.RentalPhase
PaymentPhase = api_payment.PaymentPhase
DeliveryPhase = api_delivery.DeliveryPhase
Type = api_conditions.ConditionType
Reason = api_conditions.Reason

RESTING_PHASES = frozenset({Phase.CONFIRMED, Phase.CANCELLED, Phase.REJECTED})
# How far along each phase is. A decision made on a stale observation (say, a Payment not yet seen
# after a restart) may suggest an earlier phase than the rental has reached; such a step back is
# discarded, never written.
_RANK: dict[Phase | None, float] = {
    None: 0,
    Phase.PENDING: 0,
    Phase.AWAITING_PAYMENT: 1,
    # A Payment never goes from Deferred back to Pending, so neither does the rental: a Pending view
    # after a deferral is stale and must not reset the deferral's deadline.
    Phase.PAYMENT_DEFERRED: 1.5,
    Phase.CONFIRMED: 2,
    Phase.CANCELLING: 3,
    Phase.CANCELLED: 4,
    Phase.REJECTED: 4,
}
_DELIVERY_RANK = {
    None: 0,
    DeliveryPhase.PENDING: 0,
    DeliveryPhase.SHIPPING: 1,
    DeliveryPhase.DELIVERED: 2,
    DeliveryPhase.CANCELLED: 3,
    DeliveryPhase.RETURNING: 3,
    DeliveryPhase.RETURNED: 4,
}
_PAYMENT_RANK: dict[PaymentPhase | None, float] = {
    None: 0,
    PaymentPhase.PENDING: 0,
    PaymentPhase.DEFERRED: 0.5,
    PaymentPhase.APPROVED: 1,
    PaymentPhase.DECLINED: 1,
    PaymentPhase.FAILED: 1,
    PaymentPhase.REFUNDING: 2,
    PaymentPhase.REFUNDED: 3,
}
# Payment phases after which no money is held for the rental.
_PAYMENT_SETTLED = frozenset({PaymentPhase.DECLINED, PaymentPhase.REFUNDED, PaymentPhase.FAILED})
# Delivery phases after which the unit is back with the business (or never left).
_DELIVERY_STOPPED = frozenset({DeliveryPhase.CANCELLED, DeliveryPhase.RETURNED})
# How often a rental blocked by a stranger under its sibling's name looks again: nothing wakes it when
# the stranger goes (a deleted Payment or Delivery only leaves the store).
MISMATCH_RECHECK_SECONDS = 10.0


# --- actions -------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AddFinalizer:
    pass


@dataclasses.dataclass(frozen=True)
class RemoveFinalizer:
    pass


@dataclasses.dataclass(frozen=True)
class Reserve:
    purifier: str


@dataclasses.dataclass(frozen=True)
class Release:
    purifier: str


@dataclasses.dataclass(frozen=True)
class CreatePayment:
    spec: api_payment.PaymentSpec


@dataclasses.dataclass(frozen=True)
class RequestRefund:
    """Ask the Payment to give the money back (or, if nothing was charged, to make sure nothing is)."""

    payment: str


@dataclasses.dataclass(frozen=True)
class CreateDelivery:
    spec: api_delivery.DeliverySpec


@dataclasses.dataclass(frozen=True)
class StopDelivery:
    """Ask the Delivery to cancel its shipment, or to bring a delivered unit back."""

    delivery: str


Action = (
    AddFinalizer
    | RemoveFinalizer
    | Reserve
    | Release
    | CreatePayment
    | RequestRefund
    | CreateDelivery
    | StopDelivery
)


@dataclasses.dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Facts:
    """Everything `decide` may look at. `purifier` None means no such Purifier exists."""

    rental: api_rental.Rental
    purifier: api_purifier.Purifier | None
    payment: api_payment.Payment | None
    delivery: api_delivery.Delivery | None
    now: datetime.datetime
    deferral_timeout: datetime.timedelta
    # Set by the executor after a Reserve action came back refused (every unit held by others).
    reservation_refused: bool = False
    # Highest status.history seq whose text message has been sent (known to the notifier).
    notified_seq: int = 0
    # Why the object found under the rental's Payment (Delivery) name is not the rental's own, for
    # people (see `payment_mismatch`); `payment` (`delivery`) is None then. Never trusted: reported.
    payment_mismatch: str | None = None
    delivery_mismatch: str | None = None


@dataclasses.dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    status: api_rental.RentalStatus
    events: tuple[Event, ...]
    # Ask again after this many seconds even if nothing changes (deferral expiry).
    requeue_after: float | None = None


def idempotency_key(rental: api_rental.Rental) -> str:
    """The key of the rental's one charge: the uid never changes, across retries and restarts alike."""
    return f"rental-{rental.metadata.uid}"


def controller_uid(owner_references: Iterable[Mapping[str, Any]]) -> str | None:
    """The uid of the Rental controlling an object, from its `metadata.ownerReferences`; None if none does."""
    for reference in owner_references:
        group = str(reference.get("apiVersion") or "").partition("/")[0]
        if (
            reference.get("controller") is True
            and reference.get("kind") == api_rental.RESOURCE.kind
            and group == api_rental.RESOURCE.group
        ):
            return str(reference.get("uid") or "") or None
    return None


def payment_mismatch(
    rental: api_rental.Rental,
    purifier: api_purifier.Purifier | None,
    payment: api_payment.Payment,
    owner_uid: str | None,
) -> str | None:
    """Why `payment`, found under the rental's Payment name, is not the rental's charge; None if it is.

    The rental's own is controlled by the rental's uid and asks for its charge: its customer, its
    idempotency key, and its price (as recorded in the rental's status once seen, else the Purifier's
    fee times the months; a Purifier gone before anything was recorded leaves the price unchecked).
    """
    spec, price = payment.spec, _recorded_price(rental) or _price(rental, purifier)
    expected: list[tuple[str, object, object]] = [
        ("spec.rental", spec.rental, rental.metadata.name),
        ("spec.customerId", spec.customer_id, rental.spec.customer.id),
        ("spec.idempotencyKey", spec.idempotency_key, idempotency_key(rental)),
    ]
    if price is not None:
        expected += [("spec.amount", spec.amount, price[0]), ("spec.currency", spec.currency, price[1])]
    return _mismatch("Payment", payment.metadata.name, rental, owner_uid, expected)


def delivery_mismatch(
    rental: api_rental.Rental, delivery: api_delivery.Delivery, owner_uid: str | None
) -> str | None:
    """Why `delivery`, found under the rental's Delivery name, is not the rental's shipment; None if it is.

    The rental's own is controlled by the rental's uid and ships its unit to its customer (the address
    is not compared: the customer may correct it after the shipment was created).
    """
    spec = delivery.spec
    expected = [
        ("spec.rental", spec.rental, rental.metadata.name),
        ("spec.purifier", spec.purifier, rental.spec.purifier),
        ("spec.customerId", spec.customer_id, rental.spec.customer.id),
    ]
    return _mismatch("Delivery", delivery.metadata.name, rental, owner_uid, expected)


def _mismatch(
    kind: str,
    name: str | None,
    rental: api_rental.Rental,
    owner_uid: str | None,
    expected: Iterable[tuple[str, object, object]],
) -> str | None:
    found = f"{kind} {name!r} is not this rental's"
    if owner_uid is None:
        return f"{found}: no Rental owns it; it has to be deleted before this rental can go on"
    if owner_uid != rental.metadata.uid:
        return (
            f"{found}: it belongs to another Rental (uid {owner_uid}); waiting for it to be removed "
            "(garbage collection does once that Rental is gone)"
        )
    wrong = [f"{field} is {got!r}, expected {want!r}" for field, got, want in expected if got != want]
    return (
        f"{found}: {'; '.join(wrong)}; it has to be deleted before this rental can go on" if wrong else None
    )


def _price(rental: api_rental.Rental, purifier: api_purifier.Purifier | None) -> tuple[int, str] | None:
    """The rental's fee as the Purifier sets it now: the monthly fee times the months."""
    if purifier is None:
        return None
    return purifier.spec.monthly_fee * rental.spec.months, purifier.spec.currency


def _recorded_price(rental: api_rental.Rental) -> tuple[int, str] | None:
    """The fee the rental recorded from its Payment: what it was charged even if the Purifier's changed."""
    summary = rental.status.payment
    if summary is None or summary.amount is None or summary.currency is None:
        return None
    return summary.amount, summary.currency


def is_resting(status: api_rental.RentalStatus) -> bool:
    """Whether the rental needs no more work unless something outside changes (the autoscaling signal)."""
    if status.phase not in RESTING_PHASES:
        return False
    if status.phase is Phase.CONFIRMED:
        return status.delivery is not None and status.delivery.phase in {
            DeliveryPhase.DELIVERED,
            *_DELIVERY_STOPPED,
        }
    return True


# --- the decision --------------------------------------------------------------------------------------
class _Builder:
    """Accumulates the next status, the actions and the events of one decision."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.rental = facts.rental
        self.status = facts.rental.status.model_copy(deep=True)
        self.actions: list[Action] = []
        self.events: list[Event] = []
        self.requeue_after: float | None = None

    # facts, named
    @property
    def name(self) -> str:
        return self.rental.metadata.name or ""

    @property
    def held(self) -> bool:
        """Whether a unit is held for the rental: the Purifier's journal, else the rental's own record.

        With the Purifier gone there is no stock to hold a unit of (nor to give it back to).
        """
        purifier = self.facts.purifier
        if purifier is None:
            return False
        recorded = conditions.is_true(self.rental.status.conditions, Type.STOCK_RESERVED)
        return stock.holds(purifier.status, self.rental.metadata.uid or "", recorded=recorded)

    @property
    def payment_phase(self) -> PaymentPhase | None:
        return self.facts.payment.status.phase if self.facts.payment else None

    @property
    def delivery_phase(self) -> DeliveryPhase | None:
        """The newer of the observed Delivery's phase and the one the rental already recorded."""
        observed = self.facts.delivery.status.phase if self.facts.delivery else None
        recorded = self.rental.status.delivery.phase if self.rental.status.delivery else None
        return recorded if _DELIVERY_RANK[recorded] > _DELIVERY_RANK[observed] else observed

    # status edits
    def condition(self, type_: str, status: bool | None, reason: str, message: str) -> None:
        self.status.conditions = conditions.set_condition(
            self.status.conditions,
            type_=type_,
            status=status,
            reason=reason,
            message=message,
            generation=self.rental.metadata.generation,
            now=self.facts.now,
        )

    def phase(self, phase: Phase, message: str, *, warning: bool = False) -> None:
        if self.status.phase is None and phase is not Phase.PENDING:
            # Record that the rental was accepted, at the time the API server accepted it.
            created = self.rental.metadata.creation_timestamp or self.facts.now
            self._history("Rental", Phase.PENDING, created, "application received")
        if self.status.phase != phase:
            self._history("Rental", phase, self.facts.now, message)
            self.events.append(Event("Warning" if warning else "Normal", phase.value, message))
        self.status.phase = phase
        self.status.message = message

    def _history(
        self, kind: Literal["Rental", "Delivery"], phase: str, at: datetime.datetime, message: str
    ) -> None:
        last = self.status.history[-1].seq if self.status.history else 0
        entry = api_rental.HistoryEntry(kind=kind, phase=phase, at=at, message=message, seq=last + 1)
        self.status.history = [*self.status.history, entry][-api_rental.HISTORY_LIMIT :]

    def act(self, action: Action, event: Event | None = None) -> None:
        self.actions.append(action)
        if event:
            self.events.append(event)

    def plan(self) -> Plan:
        if _RANK[self.status.phase] < _RANK[self.rental.status.phase]:
            # A step back: the facts are stale. Keep the status; the actions are idempotent and the
            # next observation decides again.
            return Plan(tuple(self.actions), self.rental.status, (), self.requeue_after)
        self._mirror_siblings()
        self.status.observed_generation = self.rental.metadata.generation
        changed = self.status != self.rental.status
        if self.facts.notified_seq > (self.status.notified_seq or 0) and (changed or is_resting(self.status)):
            # Piggy-back the notification mark on a write that happens anyway; a resting rental
            # gets one last write so a restart does not resend its final message.
            self.status.notified_seq = self.facts.notified_seq
        return Plan(tuple(self.actions), self.status, tuple(self.events), self.requeue_after)

    def _mirror_siblings(self) -> None:
        payment, delivery = self.facts.payment, self.facts.delivery
        previous_payment = self.status.payment.phase if self.status.payment else None
        if payment is not None and _PAYMENT_RANK[payment.status.phase] >= _PAYMENT_RANK[previous_payment]:
            self.status.payment = api_rental.PaymentSummary(
                name=payment.metadata.name,
                phase=payment.status.phase or PaymentPhase.PENDING,
                amount=payment.spec.amount,
                currency=payment.spec.currency,
                transaction_id=payment.status.transaction_id,
            )
        if delivery is not None:
            phase = delivery.status.phase or DeliveryPhase.PENDING
            previous = self.status.delivery.phase if self.status.delivery else None
            if _DELIVERY_RANK[phase] < _DELIVERY_RANK[previous]:
                return  # a stale observation of the delivery: keep the newer summary
            for step in _delivery_steps(previous, phase, shipped=delivery.status.shipped_at is not None):
                self._history("Delivery", step, self.facts.now, f"delivery {step.value.lower()}")
            self.status.delivery = api_rental.DeliverySummary(
                name=delivery.metadata.name, phase=phase, tracking_number=delivery.status.tracking_number
            )


_DELIVERY_PATH = (
    DeliveryPhase.SHIPPING,
    DeliveryPhase.DELIVERED,
    DeliveryPhase.RETURNING,
    DeliveryPhase.RETURNED,
)


def _delivery_steps(
    previous: DeliveryPhase | None, current: DeliveryPhase, *, shipped: bool
) -> list[DeliveryPhase]:
    """The delivery phases the customer has not heard of, in order, from `previous` to `current`.

    The rental sees only the Delivery's latest phase; when it moved more than one step since the
    last look (say, shipped and delivered while the operator restarted), the steps in between still
    happened and each gets its entry, and its text message.
    """
    if current == previous or current is DeliveryPhase.PENDING:
        return []
    if current is DeliveryPhase.CANCELLED:
        return [DeliveryPhase.SHIPPING, current] if previous is None and shipped else [current]
    start = _DELIVERY_PATH.index(previous) + 1 if previous in _DELIVERY_PATH else 0
    return list(_DELIVERY_PATH[start : _DELIVERY_PATH.index(current) + 1])


def decide(facts: Facts) -> Plan:
    """The next step of one rental's saga."""
    b = _Builder(facts)
    rental = facts.rental
    deleting = rental.metadata.deletion_timestamp is not None

    if b.status.phase in (Phase.REJECTED, Phase.CANCELLED):
        _compensate(b)
        if deleting and _settled(b):
            b.act(RemoveFinalizer())
        return b.plan()
    if rental.spec.cancelled or deleting:
        return _cancel(b, deleting).plan()
    if facts.payment is None and facts.payment_mismatch is not None:
        # A stranger under the Payment's name: the rental cannot create its own, and must not take it
        # for its charge. Report and wait; a unit already held stays held, nothing new is reserved.
        b.condition(Type.READY, False, Reason.PAYMENT_MISMATCH, facts.payment_mismatch)
        return _mismatch_reported(b, Type.PAID, Reason.PAYMENT_MISMATCH, facts.payment_mismatch).plan()
    if facts.payment is not None and facts.payment.spec.refund:
        # Only a cancellation or a rejection asks for a refund, and this rental is not cancelled: it
        # was rejected (its deferral expired) by a pass whose Rejected write was then lost (a crash,
        # an API server restart). Finish that rejection: never wait on the refund as if it were a
        # stale view, nor confirm and ship a rental whose fee is being given back.
        return _reject(b, Type.PAID, Reason.DEFERRAL_EXPIRED, _DEFERRAL_EXPIRED).plan()

    if (
        facts.payment is None
        and b.status.phase not in (None, Phase.PENDING)
        and (facts.purifier is None or not b.held)
    ):
        # Past the application, yet no Payment observed: a view that missed it (the controller
        # reads a Payment the status names before deciding). Recreate it only if the catalog entry
        # is there to price it; never reject a rental that may be in force on such a view.
        return b.plan()
    if facts.purifier is None and facts.payment is None:
        # Only an application can fail for want of a purifier: once payment is under way, the
        # catalog entry going away changes nothing for the customer.
        return _reject(
            b,
            Type.STOCK_RESERVED,
            Reason.PURIFIER_NOT_FOUND,
            f"no Purifier named {rental.spec.purifier!r} in this namespace",
        ).plan()
    if not b.held and facts.payment is None:
        if facts.reservation_refused:
            return _reject(
                b,
                Type.STOCK_RESERVED,
                Reason.OUT_OF_STOCK,
                f"every unit of {rental.spec.purifier} is rented out",
            ).plan()
        # The finalizer goes on before the first effect that would need undoing (a held unit), and
        # not before: a rental rejected on arrival has nothing to compensate and costs no write.
        if FINALIZER not in rental.metadata.finalizers:
            b.act(AddFinalizer())
        b.act(Reserve(rental.spec.purifier))
        return b.plan()

    if (b.held or facts.payment is not None) and FINALIZER not in rental.metadata.finalizers:
        b.act(AddFinalizer())  # something to undo exists: deletion must wait for compensation
    if b.held:
        b.condition(
            Type.STOCK_RESERVED,
            True,
            Reason.RESERVED,
            f"one unit of {rental.spec.purifier} is held for this rental",
        )
    if facts.payment is None:
        price = _price(rental, facts.purifier)
        assert price is not None  # held, see above
        spec = api_payment.PaymentSpec(
            rental=b.name,
            amount=price[0],
            currency=price[1],
            customer_id=rental.spec.customer.id,
            idempotency_key=idempotency_key(rental),
        )
        b.act(
            CreatePayment(spec),
            Event("Normal", "PaymentRequested", f"charging {spec.amount} {spec.currency}"),
        )
        return _awaiting_payment(b).plan()

    match b.payment_phase:
        case None | PaymentPhase.PENDING:
            return _awaiting_payment(b).plan()
        case PaymentPhase.DEFERRED:
            return _deferred(b).plan()
        case PaymentPhase.DECLINED:
            reason = facts.payment.status.last_error or "declined by the payment system"
            return _reject(b, Type.PAID, Reason.PAYMENT_DECLINED, f"payment declined: {reason}").plan()
        case PaymentPhase.FAILED:
            reason = facts.payment.status.last_error or "the payment cannot be taken"
            return _reject(b, Type.PAID, Reason.PAYMENT_FAILED, f"payment failed: {reason}").plan()
        case PaymentPhase.APPROVED:
            return _confirmed(b).plan()
        case _:
            # Refunding or Refunded while the rental is neither cancelled nor rejected: only a stale
            # observation can show this; wait for the next one rather than guess.
            return b.plan()


def _awaiting_payment(b: _Builder) -> _Builder:
    b.status.deferred_until = None
    b.condition(Type.PAID, False, Reason.PAYMENT_PENDING, "the fee is being charged")
    b.condition(Type.READY, False, Reason.AWAITING_PAYMENT, "waiting for the payment to be approved")
    b.phase(Phase.AWAITING_PAYMENT, "a unit is reserved; taking payment")
    return b


_DEFERRAL_EXPIRED = "the payment system did not recover in time; the reservation was released"


def _deferred(b: _Builder) -> _Builder:
    facts = b.facts
    if b.status.deferred_until is None:
        b.status.deferred_until = facts.now + facts.deferral_timeout
    remaining = (b.status.deferred_until - facts.now).total_seconds()
    if remaining <= 0:
        return _reject(b, Type.PAID, Reason.DEFERRAL_EXPIRED, _DEFERRAL_EXPIRED)
    b.requeue_after = remaining
    error = facts.payment.status.last_error if facts.payment else None
    b.condition(
        Type.PAID,
        False,
        Reason.PAYMENT_DEFERRED,
        f"payment system unavailable ({error or 'circuit open'}); the fee will be charged when it recovers",
    )
    b.condition(
        Type.READY,
        False,
        Reason.PAYMENT_DEFERRED,
        f"pay later: the unit stays reserved until {b.status.deferred_until.isoformat()}",
    )
    b.phase(
        Phase.PAYMENT_DEFERRED,
        "the payment system is busy; the unit stays reserved and the fee will be charged automatically",
        warning=True,
    )
    return b


def _confirmed(b: _Builder) -> _Builder:
    facts, rental = b.facts, b.rental
    b.status.deferred_until = None
    transaction = facts.payment.status.transaction_id if facts.payment else None
    b.condition(Type.PAID, True, Reason.PAYMENT_APPROVED, f"charged; transaction {transaction}")
    stranger = facts.delivery_mismatch if facts.delivery is None else None
    if facts.delivery is None and stranger is None:
        spec = api_delivery.DeliverySpec(
            rental=b.name,
            purifier=rental.spec.purifier,
            address=rental.spec.customer.address,
            customer_id=rental.spec.customer.id,
        )
        b.act(CreateDelivery(spec), Event("Normal", "DeliveryRequested", "shipping the unit"))
    phase = b.delivery_phase
    if stranger is not None:
        pass  # reported below, once the phase has its message
    elif phase in (DeliveryPhase.SHIPPING, DeliveryPhase.DELIVERED):
        tracking = facts.delivery.status.tracking_number if facts.delivery else None
        reason = Reason.SHIPPING if phase is DeliveryPhase.SHIPPING else Reason.DELIVERED
        b.condition(Type.DELIVERY_STARTED, True, reason, f"tracking number {tracking}")
    elif phase in _DELIVERY_STOPPED:
        reason = Reason.SHIPMENT_CANCELLED if phase is DeliveryPhase.CANCELLED else Reason.RETURNED
        b.condition(Type.DELIVERY_STARTED, False, reason, "the shipment was stopped by the carrier")
    else:
        b.condition(Type.DELIVERY_STARTED, False, Reason.DELIVERY_PENDING, "the shipment is being created")
    b.condition(Type.READY, True, Reason.CONFIRMED, "paid; the rental is in force")
    b.phase(Phase.CONFIRMED, "paid; delivery started")
    if stranger is not None:
        # Paid and in force, but its shipment's name is taken: ship nothing until the stranger is gone.
        _mismatch_reported(b, Type.DELIVERY_STARTED, Reason.DELIVERY_MISMATCH, stranger)
    return b


def _mismatch_reported(b: _Builder, type_: str, reason: str, message: str) -> _Builder:
    """Report a stranger under a sibling's name: the condition, a Warning Event when it is news (not on
    every look), the message for `kubectl get`, and a look again later."""
    if conditions.reason_of(b.rental.status.conditions, type_) != reason:
        b.events.append(Event("Warning", reason, message))
    b.condition(type_, False, reason, message)
    b.status.message = message
    b.requeue_after = MISMATCH_RECHECK_SECONDS
    return b


def _reject(b: _Builder, type_: str, reason: str, message: str) -> _Builder:
    b.condition(type_, False, reason, message)
    b.condition(Type.READY, False, Reason.REJECTED, message)
    b.status.deferred_until = None
    b.phase(Phase.REJECTED, message, warning=True)
    _compensate(b)
    return b


def _cancel(b: _Builder, deleting: bool) -> _Builder:
    """Cancellation (spec.cancelled or deletion) of a rental that may be in force.

    Order: stop the delivery and ask for the refund at once (neither depends on the other, and a
    shipment stopped early costs least); give the unit back to stock only once the delivery is stopped
    or returned, because until then the unit is not physically back; `Cancelled` once all three hold.
    """
    why = "rental deleted" if deleting else "cancelled by the customer"
    if b.status.phase is not None or b.held or b.facts.payment or b.facts.delivery:
        b.phase(Phase.CANCELLING, f"{why}: refunding, stopping delivery, releasing the unit")
        b.condition(Type.READY, False, Reason.CANCELLING, why)
    _compensate(b)
    if _settled(b):
        if b.facts.payment is not None and b.payment_phase is PaymentPhase.REFUNDED:
            b.condition(Type.PAID, False, Reason.REFUNDED, "the fee was refunded")
        b.condition(Type.READY, False, Reason.CANCELLED, f"{why}; nothing is charged or held")
        b.phase(Phase.CANCELLED, f"{why}; everything was undone")
        if deleting:
            b.act(RemoveFinalizer())
    return b


def _compensate(b: _Builder) -> None:
    """Undo whatever is still in effect; each step only if there is something to undo."""
    payment, delivery = b.facts.payment, b.facts.delivery
    if delivery is not None and not delivery.spec.cancelled and b.delivery_phase not in _DELIVERY_STOPPED:
        b.act(
            StopDelivery(delivery.metadata.name or ""),
            Event("Normal", "DeliveryStopping", "stopping the delivery"),
        )
    if payment is not None and not payment.spec.refund and b.payment_phase not in _PAYMENT_SETTLED:
        b.act(
            RequestRefund(payment.metadata.name or ""),
            Event("Normal", "RefundRequested", "refunding the fee"),
        )
    unit_is_back = delivery is None or b.delivery_phase in _DELIVERY_STOPPED
    if b.held and unit_is_back:
        b.act(
            Release(b.rental.spec.purifier), Event("Normal", "StockReleased", "the unit went back to stock")
        )
        b.condition(Type.STOCK_RESERVED, False, Reason.RELEASED, "the unit went back to stock")
    elif not b.held and conditions.is_true(b.status.conditions, Type.STOCK_RESERVED):
        # Given back by an earlier pass whose status write was lost: record it now, so the Purifier's
        # journal entry for the release can go.
        b.condition(Type.STOCK_RESERVED, False, Reason.RELEASED, "the unit went back to stock")


def _settled(b: _Builder) -> bool:
    """Nothing is charged, shipped or held for the rental any more."""
    payment_done = b.facts.payment is None or b.payment_phase in _PAYMENT_SETTLED
    delivery_done = b.facts.delivery is None or b.delivery_phase in _DELIVERY_STOPPED
    return payment_done and delivery_done and not b.held
