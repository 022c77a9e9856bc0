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
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from rental_operator.api import conditions as api_conditions
from rental_operator.api import delivery as api_delivery
from rental_operator.api import payment as api_payment
from rental_operator.api import purifier as api_purifier
from rental_operator.api import rental as api_rental
from rental_operator.reconcilers import billing, conditions, contract, stock

__all__ = [
    "FINALIZER",
    "MISMATCH_RECHECK_SECONDS",
    "RESTING_PHASES",
    "Action",
    "AddFinalizer",
    "CreateDelivery",
    "CreatePayment",
    "DeletePayment",
    "Event",
    "Facts",
    "Plan",
    "Release",
    "RemoveFinalizer",
    "RequestRefund",
    "Reserve",
    "RetryCharge",
    "StopDelivery",
    "Transfer",
    "controller_uid",
    "decide",
    "delivery_mismatch",
    "fee_payment_name",
    "idempotency_key",
    "is_resting",
    "payment_mismatch",
    "payment_name",
    "rental_label",
]

# Held while the rental may have something to undo (a reserved unit, a charge, a shipment), so that
# deleting an in-force rental runs its compensation before the object goes away.
FINALIZER = "rental.purifier.io/compensation"

Phase = api_rental.RentalPhase
PaymentPhase = api_payment.PaymentPhase
DeliveryPhase = api_delivery.DeliveryPhase
Type = api_conditions.ConditionType
Reason = api_conditions.Reason

RESTING_PHASES = frozenset(
    {Phase.CONFIRMED, Phase.PAST_DUE, Phase.CANCELLED, Phase.REJECTED, Phase.COMPLETED}
)
# A rental in force: paid up, or past due on a monthly charge being retried.
IN_FORCE = frozenset({Phase.CONFIRMED, Phase.PAST_DUE})
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
    # Past due and paid up again alternate while the contract runs: neither is a step back.
    Phase.PAST_DUE: 2,
    Phase.CANCELLING: 3,
    Phase.CANCELLED: 4,
    Phase.REJECTED: 4,
    Phase.COMPLETED: 4,
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
# Delivery phases that mean the unit reached the customer (the withdrawal window runs from then).
_DELIVERED_ONCE = frozenset({DeliveryPhase.DELIVERED, DeliveryPhase.RETURNING, DeliveryPhase.RETURNED})
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
class Transfer:
    """Hand the held unit over to the customer for good: the term is paid up and over."""

    purifier: str


@dataclasses.dataclass(frozen=True)
class CreatePayment:
    name: str
    spec: api_payment.PaymentSpec


@dataclasses.dataclass(frozen=True)
class RequestRefund:
    """Ask the Payment to give the money back (or, if nothing was charged, to make sure nothing is)."""

    payment: str


@dataclasses.dataclass(frozen=True)
class RetryCharge:
    """Ask the Payment of a declined monthly charge for another attempt (dunning)."""

    payment: str
    attempt: int


@dataclasses.dataclass(frozen=True)
class DeletePayment:
    """Delete a settled Payment whose outcome `status.billing` holds (beyond the history kept)."""

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
    | Transfer
    | CreatePayment
    | RequestRefund
    | RetryCharge
    | DeletePayment
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
    # The contract: the rental's own Payments of periods 2 and later, by period, and of its
    # early-termination fee (`payment` is period 1's, the application's charge), and the settings that
    # shape billing.
    charges: Mapping[int, api_payment.Payment] = dataclasses.field(default_factory=dict)
    fee: api_payment.Payment | None = None
    terms: contract.Terms = dataclasses.field(default_factory=contract.Terms)


@dataclasses.dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    status: api_rental.RentalStatus
    events: tuple[Event, ...]
    # Ask again after this many seconds even if nothing changes (deferral expiry).
    requeue_after: float | None = None


# A Payment's name is the rental's with a suffix: `-p<period>` or `-fee`. No rental's charge can take
# another's name (a name ends in one suffix only); past the longest name the API allows, the rental's
# part is cut and a digest of it keeps the name unique.
_MAX_NAME = 253


def payment_name(rental_name: str, period: int) -> str:
    """The name of the Payment of the rental's billing period `period` (1: charged at application)."""
    return _fitted(rental_name, _MAX_NAME, suffix=f"-p{period}")


def fee_payment_name(rental_name: str) -> str:
    """The name of the Payment of the rental's early-termination fee."""
    return _fitted(rental_name, _MAX_NAME, suffix="-fee")


# A label value has at most 63 characters; a Rental's name (a DNS subdomain, which a label value may
# otherwise hold as it is) up to 253.
_MAX_LABEL_VALUE = 63


def rental_label(rental_name: str) -> str:
    """The value of the `rental.purifier.io/rental` label on a rental's Payments and Delivery.

    The rental's name when it fits; a longer one is cut and a digest of it appended, so the label
    never stops a charge or a shipment from being created, and stays distinct per rental.
    """
    return _fitted(rental_name, _MAX_LABEL_VALUE)


def _fitted(rental_name: str, limit: int, *, suffix: str = "") -> str:
    """`rental_name` + `suffix` in at most `limit` characters: as it is when it fits, else the name cut
    (never ending in a separator) with a digest of the whole name before the suffix."""
    if len(rental_name) + len(suffix) <= limit:
        return rental_name + suffix
    digest = hashlib.sha256(rental_name.encode()).hexdigest()[:10]
    return f"{rental_name[: limit - len(suffix) - 11].rstrip('.-')}-{digest}{suffix}"


def idempotency_key(rental: api_rental.Rental) -> str:
    """The key of the application's charge (period 1): derived from the uid, the same on every retry."""
    return billing.period_key(rental.metadata.uid or "", 1)


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
    *,
    period: int | None = 1,
) -> str | None:
    """Why `payment`, found under the name of the rental's charge for `period` (None: its fee), is not
    that charge; None if it is.

    The rental's own is controlled by the rental's uid and asks for its charge: its period, its
    customer, its idempotency key, and its price (the monthly fee as locked in the rental's status once
    recorded, else the Purifier's; the fee as recorded; a Purifier gone before anything was recorded
    leaves the price unchecked).
    """
    uid = rental.metadata.uid or ""
    key = billing.period_key(uid, period) if period is not None else billing.fee_key(uid)
    spec, price = payment.spec, _recorded_price(rental, period) or _price(purifier, period)
    expected: list[tuple[str, object, object]] = [
        ("spec.rental", spec.rental, rental.metadata.name),
        ("spec.period", spec.period, period),
        ("spec.customerId", spec.customer_id, rental.spec.customer.id),
        ("spec.idempotencyKey", spec.idempotency_key, key),
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


def _price(purifier: api_purifier.Purifier | None, period: int | None) -> tuple[int, str] | None:
    """A period's price as the Purifier sets it now (before the rental locked its terms)."""
    if purifier is None or period is None:
        return None
    return purifier.spec.monthly_fee, purifier.spec.currency


def _recorded_price(rental: api_rental.Rental, period: int | None) -> tuple[int, str] | None:
    """The price of a charge as the rental's terms fix it: what it is charged even if the Purifier's
    fee changed since the application."""
    terms = rental.status.billing
    if terms is None:
        return None
    if period is None:
        return (terms.fee_amount, terms.currency) if terms.fee_amount else None
    return terms.monthly_fee, terms.currency


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
        self,
        kind: Literal["Rental", "Delivery", "Billing"],
        phase: str,
        at: datetime.datetime,
        message: str,
        **details: object,
    ) -> None:
        last = self.status.history[-1].seq if self.status.history else 0
        entry = api_rental.HistoryEntry.model_validate(
            {"kind": kind, "phase": phase, "at": at, "message": message, "seq": last + 1, **details}
        )
        self.status.history = [*self.status.history, entry][-api_rental.HISTORY_LIMIT :]

    def billing_event(self, notice: contract.Notice) -> None:
        """A billing event the customer is told about: a history entry (one text) and an Event."""
        self._history(
            "Billing",
            notice.phase,
            self.facts.now,
            notice.message,
            period=notice.period,
            amount=notice.amount,
            due_at=notice.at,
        )
        warning = notice.phase == "ChargeDeclined"
        self.events.append(Event("Warning" if warning else "Normal", notice.phase, notice.message))

    def wait_until(self, when: datetime.datetime) -> None:
        """Look again at `when` (a due date, a retry, the term's end) even if nothing else happens."""
        delay = max((when - self.facts.now).total_seconds(), 0.0)
        self.requeue_after = delay if self.requeue_after is None else min(self.requeue_after, delay)

    @property
    def own_payments(self) -> list[api_payment.Payment]:
        """Every charge of the rental observed: the application's, the later periods', the fee."""
        facts = self.facts
        found = [facts.payment, *facts.charges.values(), facts.fee]
        return [payment for payment in found if payment is not None]

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
        delivery = self.facts.delivery
        payment = max(self.own_payments, key=_charge_order, default=None)
        recorded = self.status.payment
        if payment is not None and _newer_charge(payment, recorded):
            self.status.payment = api_rental.PaymentSummary(
                name=payment.metadata.name,
                period=payment.spec.period,
                fee=True if payment.spec.period is None else None,
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


def _charge_order(payment: api_payment.Payment) -> int:
    """Charges in the order they are made: period by period, the fee last (it ends the contract)."""
    return payment.spec.period if payment.spec.period is not None else api_payment.MAX_PERIOD + 1


def _newer_charge(payment: api_payment.Payment, recorded: api_rental.PaymentSummary | None) -> bool:
    """Whether `payment` should replace the recorded summary: a later charge, or the same one further on
    (a stale view of a charge, or an older charge seen again, never moves the summary back)."""
    if recorded is None:
        return True
    recorded_order = api_payment.MAX_PERIOD + 1 if recorded.fee else (recorded.period or 1)
    order = _charge_order(payment)
    if order != recorded_order:
        return order > recorded_order
    return _PAYMENT_RANK[payment.status.phase] >= _PAYMENT_RANK[recorded.phase]


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
    terms = b.status.billing

    if b.status.phase is Phase.COMPLETED:
        # The unit is the customer's and every charge stays paid: nothing to undo, even on deletion.
        if b.held:
            b.act(Transfer(rental.spec.purifier))
        if deleting:
            b.act(RemoveFinalizer())
        return b.plan()
    if b.status.phase in (Phase.REJECTED, Phase.CANCELLED):
        _compensate(b)
        if deleting and _settled(b):
            b.act(RemoveFinalizer())
        return b.plan()
    if rental.spec.cancelled or deleting or (terms is not None and terms.ending is not None):
        return _cancel(b, deleting).plan()
    if facts.payment_mismatch is not None and (facts.payment is None or _in_force(b)):
        # A stranger under a Payment's name: the rental cannot create its own, and must not take it
        # for its charge. Report and wait; a unit already held stays held, nothing new is reserved.
        b.condition(Type.READY, False, Reason.PAYMENT_MISMATCH, facts.payment_mismatch)
        return _mismatch_reported(b, Type.PAID, Reason.PAYMENT_MISMATCH, facts.payment_mismatch).plan()
    if _in_force(b):
        # Period 1 is paid and folded into status.billing: the contract runs on from there, whether or
        # not the application's Payment is still kept.
        return _confirmed(b).plan()
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
        assert facts.purifier is not None  # held, see above
        # The terms are locked now, with the first charge: the Purifier's fee and rules as they are
        # at application are the rental's for its whole term.
        if b.status.billing is None:
            b.status.billing = contract.lock(facts.purifier.spec, rental.spec.months)
        spec = _charge_spec(b, 1, b.status.billing.monthly_fee)
        b.act(
            CreatePayment(payment_name(b.name, 1), spec),
            Event("Normal", "PaymentRequested", f"charging {spec.amount} {spec.currency} for month 1"),
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


def _in_force(b: _Builder) -> bool:
    """Whether the contract runs: period 1 paid (the anchor set) and the rental not ended."""
    terms = b.status.billing
    return terms is not None and terms.anchor is not None and b.status.phase in IN_FORCE


def _charge_spec(b: _Builder, period: int | None, amount: int) -> api_payment.PaymentSpec:
    """The Payment of a period's charge (None: the early-termination fee), at the locked terms."""
    uid = b.rental.metadata.uid or ""
    terms = b.status.billing
    assert terms is not None  # locked at application, before the first charge
    return api_payment.PaymentSpec(
        rental=b.name,
        period=period,
        amount=amount,
        currency=terms.currency,
        customer_id=b.rental.spec.customer.id,
        idempotency_key=billing.period_key(uid, period) if period is not None else billing.fee_key(uid),
    )


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
    """In force: ship the unit, run the contract (charges, dunning, the term's end), say where it stands."""
    facts, rental = b.facts, b.rental
    b.status.deferred_until = None
    stranger = facts.delivery_mismatch if facts.delivery is None else None
    if facts.delivery is None and stranger is None and b.status.delivery is None:
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
        if tracking is None and b.status.delivery is not None:
            tracking = b.status.delivery.tracking_number
        reason = Reason.SHIPPING if phase is DeliveryPhase.SHIPPING else Reason.DELIVERED
        b.condition(Type.DELIVERY_STARTED, True, reason, f"tracking number {tracking}")
    elif phase in _DELIVERY_STOPPED:
        reason = Reason.SHIPMENT_CANCELLED if phase is DeliveryPhase.CANCELLED else Reason.RETURNED
        b.condition(Type.DELIVERY_STARTED, False, reason, "the shipment was stopped by the carrier")
    else:
        b.condition(Type.DELIVERY_STARTED, False, Reason.DELIVERY_PENDING, "the shipment is being created")

    step = _run_contract(b)
    if isinstance(step, contract.EndForNonPayment):
        assert b.status.billing is not None
        b.status.billing = b.status.billing.model_copy(
            update={"ending": api_rental.Ending.NON_PAYMENT, "ending_at": facts.now}
        )
        return _cancel(b, deleting=False)
    if isinstance(step, contract.Complete) and phase is DeliveryPhase.DELIVERED:
        return _complete(b)

    terms = b.status.billing
    assert terms is not None  # set by _run_contract
    if terms.past_due is not None:
        due = terms.past_due
        when = due.next_attempt_at.date().isoformat() if due.next_attempt_at else "soon"
        b.condition(
            Type.PAID,
            False,
            Reason.CHARGE_DECLINED,
            f"the charge for month {due.period} was declined {due.attempts} time(s); next attempt {when}",
        )
        b.condition(Type.READY, True, Reason.CONFIRMED, "in force; a monthly charge is past due")
        b.phase(
            Phase.PAST_DUE,
            f"the charge for month {due.period} was declined; it is tried again on {when}",
            warning=True,
        )
    else:
        transaction = b.status.payment.transaction_id if b.status.payment else None
        latest = max(b.own_payments, key=_charge_order, default=None)
        if latest is not None and latest.status.phase is PaymentPhase.APPROVED:
            transaction = latest.status.transaction_id
        if terms.periods_paid <= 1:
            b.condition(Type.PAID, True, Reason.PAYMENT_APPROVED, f"charged; transaction {transaction}")
        else:
            b.condition(
                Type.PAID,
                True,
                Reason.PAID_UP,
                f"{terms.periods_paid} of {terms.periods_total} months paid; last transaction {transaction}",
            )
        b.condition(Type.READY, True, Reason.CONFIRMED, "paid; the rental is in force")
        b.phase(Phase.CONFIRMED, "paid; delivery started")
    if stranger is not None:
        # Paid and in force, but its shipment's name is taken: ship nothing until the stranger is gone.
        _mismatch_reported(b, Type.DELIVERY_STARTED, Reason.DELIVERY_MISMATCH, stranger)
    _prune(b)
    return b


def _locked_terms(b: _Builder) -> api_rental.Billing:
    """The rental's terms; for one whose status lost them (a write lost after the first charge was
    created), rebuilt from what the first charge asks and the Purifier's rules."""
    if b.status.billing is not None:
        return b.status.billing
    payment, purifier = b.facts.payment, b.facts.purifier
    assert payment is not None  # in force without terms only right after period 1 was approved
    spec = purifier.spec if purifier is not None else None
    return api_rental.Billing(
        monthly_fee=payment.spec.amount,
        currency=payment.spec.currency,
        mandatory_months=spec.mandatory_months if spec else 0,
        early_termination_percent=spec.early_termination_percent if spec else 0,
        periods_total=b.rental.spec.months,
    )


def _run_contract(b: _Builder) -> contract.Step | None:
    """Fold the charges into status.billing, tell the customer what happened, and act on the next step
    (charge a due period, retry a declined one, wait); the steps that end the contract go back to
    the caller."""
    facts = b.facts
    terms = _locked_terms(b)
    if terms.anchor is None:
        first = facts.payment
        assert first is not None and first.status.phase is PaymentPhase.APPROVED
        terms = contract.start(
            facts.terms,
            terms,
            approved_at=first.status.approved_at or facts.now,
            amount=first.spec.amount,
            months=b.rental.spec.months,
        )
    folded = contract.fold(
        facts.terms, terms, months=b.rental.spec.months, payments=_charges_by_period(b), now=facts.now
    )
    terms = folded.billing.model_copy(update={"withdrawal_ends_at": _withdrawal_ends(b, folded.billing)})
    b.status.billing = terms
    for notice in folded.notices:
        b.billing_event(notice)
    match folded.step:
        case contract.Charge(period=period, amount=amount):
            spec = _charge_spec(b, period, amount)
            b.act(
                CreatePayment(payment_name(b.name, period), spec),
                Event("Normal", "PaymentRequested", f"charging {amount} {spec.currency} for month {period}"),
            )
        case contract.Retry(period=period, attempt=attempt):
            b.act(
                RetryCharge(payment_name(b.name, period), attempt),
                Event("Normal", "ChargeRetried", f"charging month {period} again (attempt {attempt})"),
            )
        case contract.Wait(until=until):
            b.wait_until(until)
    return folded.step


def _charges_by_period(b: _Builder) -> dict[int, api_payment.Payment]:
    charges: dict[int, api_payment.Payment] = dict(b.facts.charges)
    if b.facts.payment is not None:
        charges[1] = b.facts.payment
    return charges


def _prune(b: _Builder) -> None:
    """Delete settled charges beyond the history kept, once nothing can ask for them back.

    A charge is settled for good once paid and folded into status.billing and the withdrawal window
    is closed (a withdrawal refunds every charge, so until then each must stay to be refunded).
    """
    terms = b.status.billing
    if terms is None or terms.withdrawal_ends_at is None or b.facts.now < terms.withdrawal_ends_at:
        return
    settled = sorted(
        (
            payment
            for payment in b.own_payments
            if payment.spec.period is not None
            and payment.spec.period <= terms.periods_paid
            and payment.status.phase is PaymentPhase.APPROVED
            and not payment.spec.refund
        ),
        key=_charge_order,
    )
    for payment in settled[: max(len(settled) - b.facts.terms.history, 0)]:
        b.act(DeletePayment(payment.metadata.name or ""))


def _complete(b: _Builder) -> _Builder:
    """Every period paid and the term over: the unit becomes the customer's, nothing is collected."""
    terms = b.status.billing
    assert terms is not None
    if b.held:
        b.act(
            Transfer(b.rental.spec.purifier),
            Event("Normal", "OwnershipTransferred", "the unit now belongs to the customer"),
        )
    b.condition(Type.STOCK_RESERVED, False, Reason.TRANSFERRED, "the unit now belongs to the customer")
    b.condition(Type.PAID, True, Reason.PAID_UP, f"all {terms.periods_total} months paid")
    b.condition(Type.READY, False, Reason.COMPLETED, "the term is over and fully paid")
    b.phase(Phase.COMPLETED, "every month is paid and the term is over: the unit is now yours")
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


def _ending(b: _Builder, deleting: bool) -> api_rental.Ending | None:
    """How a contract in force ends, decided once, at the first pass that sees the cancellation: a
    withdrawal before delivery or within the withdrawal window, a termination after it. None for a
    rental never in force (everything is undone, as for a withdrawal)."""
    terms = b.status.billing
    if terms is None or terms.anchor is None:
        return None
    if terms.ending is not None:
        return terms.ending
    # What was paid up to now counts, whatever the order in which the approval and the cancellation
    # arrived: a month approved since the last look is folded (and receipted) before the fee is
    # worked out, so the customer is neither charged the fee for a month paid nor left paying a month
    # the contract does not record. A charge approved after this moment is given back (`_keeps`).
    folded = contract.fold(
        b.facts.terms, terms, months=b.rental.spec.months, payments=_charges_by_period(b), now=b.facts.now
    )
    for notice in folded.notices:
        if notice.phase == "Charged":
            b.billing_event(notice)
    terms = folded.billing.model_copy(update={"past_due": terms.past_due})
    ends = _withdrawal_ends(b, terms)
    cancelling = billing.preview(
        paid_amount=terms.paid_amount,
        monthly_fee=terms.monthly_fee,
        mandatory_months=terms.mandatory_months,
        percent=terms.early_termination_percent,
        periods_paid=terms.periods_paid,
        withdrawal_ends_at=ends,
        now=b.facts.now,
    )
    b.status.billing = terms.model_copy(
        update={
            "ending": cancelling.ending,
            "ending_at": b.facts.now,
            "fee_amount": cancelling.fee or None,
            "withdrawal_ends_at": ends,
            "next_charge_at": None,
            "past_due": None,
        }
    )
    return cancelling.ending


def _withdrawal_ends(b: _Builder, terms: api_rental.Billing) -> datetime.datetime | None:
    """When the rental's withdrawal window closes: as recorded, else from its delivery (seen now, or
    only recorded: then from now, the earliest it can be known), else None (not delivered yet)."""
    if terms.withdrawal_ends_at is not None or b.delivery_phase not in _DELIVERED_ONCE:
        return terms.withdrawal_ends_at
    delivered_at = b.facts.delivery.status.delivered_at if b.facts.delivery else None
    return billing.withdrawal_ends_at(delivered_at or b.facts.now, b.facts.terms.withdrawal)


def _cancel(b: _Builder, deleting: bool) -> _Builder:
    """Cancellation (spec.cancelled, deletion, or the end of a contract for non-payment).

    Order: stop the delivery and settle the money at once (neither depends on the other, and a
    shipment stopped early costs least): refund every charge for a withdrawal; for a termination stop
    billing (a charge in flight is given back) and charge the early-termination fee once; for
    non-payment nothing. The unit goes back to stock only once the delivery is stopped or returned,
    because until then it is not physically back; `Cancelled` once all of it holds.
    """
    ending = _ending(b, deleting)
    terms = b.status.billing
    why = "rental deleted" if deleting else "cancelled by the customer"
    if ending is api_rental.Ending.NON_PAYMENT:
        why = "the monthly charge stayed unpaid after every retry"
    if b.status.phase is not None or b.held or b.own_payments or b.facts.delivery:
        b.phase(Phase.CANCELLING, _cancelling_message(why, ending, terms))
        b.condition(Type.READY, False, Reason.CANCELLING, why)
    _compensate(b)
    if terms is not None:
        refunded = sum(
            payment.spec.amount
            for payment in b.own_payments
            if payment.status.phase is PaymentPhase.REFUNDED and payment.status.approved_at is not None
        )
        if refunded > terms.refunded_amount:
            b.status.billing = terms = terms.model_copy(update={"refunded_amount": refunded})
    if _settled(b):
        match ending:
            case api_rental.Ending.TERMINATION:
                assert terms is not None
                b.condition(
                    Type.PAID,
                    False,
                    Reason.TERMINATED,
                    f"billing stopped after {terms.periods_paid} of {terms.periods_total} months"
                    + (
                        f"; early-termination fee {terms.fee_amount} {terms.currency}"
                        if terms.fee_amount
                        else ""
                    ),
                )
                done = f"{why}; billing stopped and the unit was collected"
            case api_rental.Ending.NON_PAYMENT:
                b.condition(Type.PAID, False, Reason.NON_PAYMENT, why)
                done = "ended for non-payment; the unit was collected"
            case _:
                if any(p.status.phase is PaymentPhase.REFUNDED for p in b.own_payments):
                    b.condition(Type.PAID, False, Reason.REFUNDED, "the fee was refunded")
                done = f"{why}; everything was undone"
        b.condition(Type.READY, False, Reason.CANCELLED, f"{why}; nothing is charged or held")
        b.phase(Phase.CANCELLED, done)
        if deleting:
            b.act(RemoveFinalizer())
    return b


def _cancelling_message(why: str, ending: api_rental.Ending | None, terms: api_rental.Billing | None) -> str:
    match ending:
        case api_rental.Ending.TERMINATION:
            fee = (
                f" and charging the early-termination fee of {terms.fee_amount} {terms.currency}"
                if terms is not None and terms.fee_amount
                else ""
            )
            return f"{why} after the withdrawal period: billing stopped; collecting the unit{fee}"
        case api_rental.Ending.NON_PAYMENT:
            return f"{why}: the contract ends and the unit is collected; nothing is refunded"
        case api_rental.Ending.WITHDRAWAL:
            return f"{why} within the withdrawal period: refunding every charge, stopping delivery"
    return f"{why}: refunding, stopping delivery, releasing the unit"


def _keeps(b: _Builder, payment: api_payment.Payment) -> bool:
    """Whether an approved charge stays paid: on a termination or for non-payment, a month the contract
    counts as paid (folded into status.billing when the ending was decided); never on a withdrawal,
    and never a charge approved after billing stopped."""
    terms = b.status.billing
    return (
        terms is not None
        and terms.ending in (api_rental.Ending.TERMINATION, api_rental.Ending.NON_PAYMENT)
        and payment.status.phase is PaymentPhase.APPROVED
        and not payment.spec.refund
        and payment.spec.period is not None
        and payment.spec.period <= terms.periods_paid
    )


def _compensate(b: _Builder) -> None:
    """Undo whatever is still in effect; each step only if there is something to undo."""
    delivery = b.facts.delivery
    if delivery is not None and not delivery.spec.cancelled and b.delivery_phase not in _DELIVERY_STOPPED:
        b.act(
            StopDelivery(delivery.metadata.name or ""),
            Event("Normal", "DeliveryStopping", "stopping the delivery"),
        )
    for payment in b.own_payments:
        if payment is b.facts.fee or payment.spec.refund or payment.status.phase in _PAYMENT_SETTLED:
            continue
        if _keeps(b, payment):
            continue  # a month paid stays paid; a charge in flight (or approved too late) is given back
        b.act(
            RequestRefund(payment.metadata.name or ""),
            Event("Normal", "RefundRequested", f"refunding {payment.spec.amount} {payment.spec.currency}"),
        )
    _charge_fee(b)
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


def _charge_fee(b: _Builder) -> None:
    """The early-termination fee: charged once (its own key), and the customer told once it is paid."""
    terms, fee = b.status.billing, b.facts.fee
    if terms is None or not terms.fee_amount or terms.ending is not api_rental.Ending.TERMINATION:
        return
    if fee is None:
        if b.facts.payment_mismatch is None:
            spec = _charge_spec(b, None, terms.fee_amount)
            b.act(
                CreatePayment(fee_payment_name(b.name), spec),
                Event(
                    "Normal",
                    "FeeRequested",
                    f"charging the early-termination fee of {spec.amount} {spec.currency}",
                ),
            )
        return
    told = (
        b.rental.status.payment is not None
        and b.rental.status.payment.fee
        and (b.rental.status.payment.phase is PaymentPhase.APPROVED)
    )
    if fee.status.phase is PaymentPhase.APPROVED and not told:
        b.billing_event(
            contract.Notice("FeeCharged", "the early-termination fee was charged", amount=fee.spec.amount)
        )


def _settled(b: _Builder) -> bool:
    """Nothing is charged (beyond what stays paid), shipped or held for the rental any more."""
    for payment in b.own_payments:
        if payment is b.facts.fee:
            if payment.status.phase not in (PaymentPhase.APPROVED, *_PAYMENT_SETTLED):
                return False
        elif payment.status.phase not in _PAYMENT_SETTLED and not _keeps(b, payment):
            return False
    terms = b.status.billing
    if (
        terms is not None
        and terms.fee_amount
        and terms.ending is api_rental.Ending.TERMINATION
        and b.facts.fee is None
    ):
        return False  # the fee is still to be charged
    delivery_done = b.facts.delivery is None or b.delivery_phase in _DELIVERY_STOPPED
    return delivery_done and not b.held
