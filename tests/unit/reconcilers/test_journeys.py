"""The reconcilers together: whole rentals driven through a small in-memory world, no cluster.

`World` plays the controllers' part the simplest way: it runs `rentals.decide` until the plan has no
actions (as the Rental controller does), carries out each action on in-memory objects, and plays the
partners through the payment, delivery and stock reconcilers. Journeys check what a customer and the
business would see at the end; the random walks check the invariants at every step: stock is never
over-allocated, phases only move forward, terminal phases are never left, history is numbered without
gaps, and once everything settles nothing stays charged or held for a rental that is not in force.
"""

from __future__ import annotations

import dataclasses
import datetime
import random

import pytest

from rental_operator.api import delivery as api_delivery
from rental_operator.api import payment as api_payment
from rental_operator.api import purifier as api_purifier
from rental_operator.api import rental as api_rental
from rental_operator.reconcilers import conditions, deliveries, payments, rentals, stock

START = datetime.datetime(2025, 6, 1, 9, 0, tzinfo=datetime.UTC)
TIMEOUT = datetime.timedelta(hours=1)
PURIFIER = "aquapure-300"
FEE = 89_700

# phase -> the phases a rental may have after one more reconciliation (with fresh observations)
FORWARD: dict[str | None, set[str | None]] = {
    None: {None, "AwaitingPayment", "Rejected", "Cancelling", "Cancelled"},
    "AwaitingPayment": {
        "AwaitingPayment",
        "PaymentDeferred",
        "Confirmed",
        "Rejected",
        "Cancelling",
        "Cancelled",
    },
    "PaymentDeferred": {"PaymentDeferred", "Confirmed", "Rejected", "Cancelling", "Cancelled"},
    "Confirmed": {"Confirmed", "Cancelling", "Cancelled"},
    "Cancelling": {"Cancelling", "Cancelled"},
    "Cancelled": {"Cancelled"},
    "Rejected": {"Rejected"},
}


class World:
    def __init__(self, *, units: int = 1) -> None:
        self.now = START
        self.purifier = api_purifier.Purifier.model_validate(
            {
                "metadata": {"name": PURIFIER, "namespace": "shop", "generation": 1},
                "spec": {"model": "AquaPure 300", "monthlyFee": FEE, "stock": units},
            }
        )
        self.rentals: dict[str, api_rental.Rental] = {}
        self.payments: dict[str, api_payment.Payment] = {}
        self.deliveries: dict[str, api_delivery.Delivery] = {}
        self.gone: set[str] = set()
        self.events: dict[str, list[rentals.Event]] = {}
        self.requeue: dict[str, float | None] = {}
        self.charged: dict[str, int] = {}  # money the payment partner holds, per rental
        self.outcomes: dict[str, str] = {}  # the partner's record per idempotency key
        # Approved Payments nobody owns under a rental's name (a leftover, or made by hand), until
        # garbage collection or a person removes them
        self.strangers: dict[str, api_payment.Payment] = {}

    # --- the customer ---
    def apply(self, name: str, months: int = 12) -> None:
        self.rentals[name] = api_rental.Rental.model_validate(
            {
                "metadata": {
                    "name": name,
                    "namespace": "shop",
                    "uid": f"uid-{name}",
                    "generation": 1,
                    "creationTimestamp": self.now.isoformat(),
                },
                "spec": {
                    "purifier": PURIFIER,
                    "customer": {"id": f"c-{name}", "phone": "+821012345678", "address": "Seoul"},
                    "months": months,
                },
            }
        )
        self.events[name] = []

    def leave_payment(self, name: str) -> None:
        """An approved Payment under `name` that no Rental owns, charging what the rental would."""
        self.strangers[name] = api_payment.Payment.model_validate(
            {
                "metadata": {"name": name, "namespace": "shop", "uid": f"stranger-{name}"},
                "spec": {
                    "rental": name,
                    "amount": FEE * 12,
                    "customerId": f"c-{name}",
                    "idempotencyKey": "k",
                },
                "status": {"phase": "Approved", "transactionId": "tx-stale", "attempts": 1},
            }
        )

    def cancel(self, name: str) -> None:
        rental = self.rentals[name]
        self.rentals[name] = rental.model_copy(
            update={
                "spec": rental.spec.model_copy(update={"cancelled": True}),
                "metadata": rental.metadata.model_copy(update={"generation": 2}),
            }
        )

    def delete(self, name: str) -> None:
        rental = self.rentals[name]
        self.rentals[name] = rental.model_copy(
            update={"metadata": rental.metadata.model_copy(update={"deletion_timestamp": self.now})}
        )

    # --- the Rental controller ---
    def reconcile(self, name: str, *, crash: bool = False) -> rentals.Plan:
        """One pass of the Rental controller; with `crash`, the process dies before the status write
        (every action's effect stays, the rental's status does not change)."""
        recorded = self.rentals[name].status
        stranger = self.strangers.get(name) if name not in self.payments else None
        facts = rentals.Facts(
            rental=self.rentals[name],
            purifier=self.purifier,
            payment=self.payments.get(name),
            delivery=self.deliveries.get(name),
            now=self.now,
            deferral_timeout=TIMEOUT,
            # as the controller does: what is under the name is checked, its owner being nobody
            payment_mismatch=rentals.payment_mismatch(self.rentals[name], self.purifier, stranger, None)
            if stranger
            else None,
        )
        for _ in range(12):
            plan = rentals.decide(facts)
            self.events[name].extend(plan.events)
            if not plan.actions:
                break
            for action in plan.actions:
                facts = self._execute(name, facts, action)
            facts = dataclasses.replace(facts, rental=facts.rental.model_copy(update={"status": plan.status}))
            if name in self.gone:
                break  # the object is going away: nothing more to write
        else:
            raise AssertionError("no steady plan")
        self.rentals[name] = facts.rental.model_copy(update={"status": recorded if crash else plan.status})
        self.requeue[name] = plan.requeue_after
        return plan

    def _execute(self, name: str, facts: rentals.Facts, action: rentals.Action) -> rentals.Facts:
        match action:
            case rentals.AddFinalizer():
                meta = facts.rental.metadata
                rental = facts.rental.model_copy(
                    update={
                        "metadata": meta.model_copy(
                            update={"finalizers": [*meta.finalizers, rentals.FINALIZER]}
                        )
                    }
                )
                return dataclasses.replace(facts, rental=rental)
            case rentals.RemoveFinalizer():
                self.gone.add(name)
                return facts
            case rentals.Reserve(purifier=purifier):
                assert purifier == PURIFIER
                refused = self._stock(name, releasing=False) is stock.Outcome.OUT_OF_STOCK
                return dataclasses.replace(facts, purifier=self.purifier, reservation_refused=refused)
            case rentals.Release():
                self._stock(name, releasing=True)
                return dataclasses.replace(facts, purifier=self.purifier)
            case rentals.CreatePayment(spec=spec):
                assert name not in self.payments, "a second charge for one rental"
                assert name not in self.strangers, "a Payment created under a name that is taken"
                self.payments[name] = api_payment.Payment.model_validate(
                    {
                        "metadata": {"name": name, "namespace": "shop", "uid": f"pay-{name}"},
                        "spec": spec.to_wire(),
                    }
                )
                return dataclasses.replace(facts, payment=self.payments[name])
            case rentals.RequestRefund(payment=payment_name):
                charge = self.payments[payment_name]
                self.payments[payment_name] = charge.model_copy(
                    update={"spec": charge.spec.model_copy(update={"refund": True})}
                )
                return dataclasses.replace(facts, payment=self.payments[payment_name])
            case rentals.CreateDelivery(spec=spec):
                assert name not in self.deliveries, "a second shipment for one rental"
                self.deliveries[name] = api_delivery.Delivery.model_validate(
                    {
                        "metadata": {"name": name, "namespace": "shop", "uid": f"dlv-{name}"},
                        "spec": spec.to_wire(),
                    }
                )
                return dataclasses.replace(facts, delivery=self.deliveries[name])
            case rentals.StopDelivery(delivery=delivery_name):
                shipment = self.deliveries[delivery_name]
                self.deliveries[delivery_name] = shipment.model_copy(
                    update={"spec": shipment.spec.model_copy(update={"cancelled": True})}
                )
                return dataclasses.replace(facts, delivery=self.deliveries[delivery_name])
        raise AssertionError(action)

    def _stock(self, name: str, *, releasing: bool) -> stock.Outcome | None:
        """The stock allocator: one reservation or release, written to the Purifier; its outcome."""
        claim = stock.Claim(name, f"uid-{name}")
        status, outcomes = stock.settle(
            self.purifier,
            release=[claim] if releasing else [],
            reserve=[] if releasing else [claim],
            records=self._records(),
            now=self.now,
        )
        self._purifier(status)
        return outcomes.get(claim.uid)

    def _records(self) -> dict[str, stock.Record]:
        """What each rental's stored status records about its unit (what the allocator reads)."""
        return {
            f"uid-{name}": stock.Record.GONE
            if name in self.gone
            else stock.Record.HOLDING
            if _records_unit(rental)
            else stock.Record.NOT_HOLDING
            for name, rental in self.rentals.items()
        }

    def _purifier(self, status: api_purifier.PurifierStatus | None) -> None:
        if status is not None:
            self.purifier = self.purifier.model_copy(update={"status": status})

    # --- the payment partner, through the Payment reconciler ---
    def pay(self, name: str, answer: str = "approved") -> payments.Call | None:
        """One pass of the Payment controller. `answer` is how the partner treats a new charge:
        approved, declined, down (a 5xx before anything happened), lost (charged, answer lost) or
        open (the breaker is open: no request leaves). A repeated key gets the first outcome back."""
        payment = self.payments[name]
        call = payments.next_call(payment)
        if call is None:
            return None
        if call is payments.Call.VOID:
            assert name not in self.charged
            status = payments.voided(payment, self.now)
        elif call is payments.Call.REFUND:
            self.charged.pop(name, None)
            status = payments.refund_done(payment, self.now)
        elif answer == "open":
            status = payments.charge_unavailable(
                payment, "circuit open", self.now, attempts=payment.status.attempts
            )
        else:
            starting = payments.charge_starting(payment, self.now)
            if starting is not None:
                payment = payment.model_copy(update={"status": starting})
                attempts = starting.attempts
            else:
                attempts = payment.status.attempts + 1
            outcome = self.outcomes.get(name)
            if outcome is None and answer in ("approved", "declined", "lost"):
                outcome = self.outcomes[name] = "declined" if answer == "declined" else "approved"
                if outcome == "approved":
                    self.charged[name] = payment.spec.amount
            if outcome is None or answer == "lost":
                status = payments.charge_unavailable(payment, "timeout", self.now, attempts=attempts)
            elif outcome == "approved":
                status = payments.charge_approved(payment, f"tx-{name}", self.now, attempts=attempts)
            else:
                status = payments.charge_declined(payment, None, "card declined", self.now, attempts=attempts)
        self.payments[name] = payment.model_copy(update={"status": status})
        return call

    # --- the shipping partner, through the Delivery reconciler ---
    def ship(self, name: str, progress: bool = True) -> deliveries.Call | None:
        delivery = self.deliveries[name]
        call = deliveries.next_call(delivery)
        now_status = (
            {
                deliveries.Call.CREATE: "shipping",
                deliveries.Call.CANCEL: "cancelled",
                deliveries.Call.RETURN: "returning",
            }.get(call)
            if call
            else None
        )
        if call is deliveries.Call.POLL:
            if not progress:
                return call
            now_status = {"Shipping": "delivered", "Returning": "returned"}[str(delivery.status.phase)]
        if now_status is None:
            return call
        status = deliveries.observed(
            delivery,
            shipment_id=f"ship-{name}",
            tracking_number=f"TRK-{name}",
            partner_status=now_status,
            now=self.now,
        )
        self.deliveries[name] = delivery.model_copy(update={"status": status})
        return call

    def settle(self, name: str) -> None:
        """Let every partner finish what is asked of it (the payment system up), then reconcile."""
        for _ in range(10):
            moved = False
            if name in self.payments and self.pay(name, "approved") is not None:
                moved = True
            if name in self.deliveries and self.ship(name) is not None:
                moved = True
            self.reconcile(name)
            if not moved:
                return
        raise AssertionError("did not settle")

    # --- reading ---
    def phase(self, name: str) -> str | None:
        phase = self.rentals[name].status.phase
        return phase.value if phase else None

    def history(self, name: str) -> list[str]:
        return [
            f"{e.kind[0]}:{e.phase}" if e.kind == "Delivery" else e.phase
            for e in self.rentals[name].status.history
        ]

    def holders(self) -> list[str]:
        """The rentals holding a unit: by the Purifier's journal, else by their own record."""
        return sorted(
            name
            for name, rental in self.rentals.items()
            if name not in self.gone
            and stock.holds(self.purifier.status, f"uid-{name}", recorded=_records_unit(rental))
        )


def _records_unit(rental: api_rental.Rental) -> bool:
    return conditions.is_true(rental.status.conditions, "StockReserved")


def _assert_history_numbered(world: World, name: str) -> None:
    seqs = [entry.seq for entry in world.rentals[name].status.history]
    assert seqs == list(range(1, len(seqs) + 1))


# --- journeys ---------------------------------------------------------------------------------------------
def test_rent_receive_cancel_return() -> None:
    world = World(units=2)
    world.apply("r1", months=12)
    world.reconcile("r1")
    assert world.phase("r1") == "AwaitingPayment"
    assert world.holders() == ["r1"]
    assert world.payments["r1"].spec.amount == FEE * 12

    world.pay("r1", "approved")
    world.reconcile("r1")
    assert world.phase("r1") == "Confirmed"
    assert world.charged == {"r1": FEE * 12}

    world.ship("r1")  # created: shipping
    world.reconcile("r1")
    world.ship("r1")  # polled: delivered
    world.reconcile("r1")
    assert rentals.is_resting(world.rentals["r1"].status)

    world.cancel("r1")
    world.reconcile("r1")
    assert world.phase("r1") == "Cancelling"
    world.pay("r1")  # refund
    world.reconcile("r1")
    world.ship("r1")  # return: returning
    world.reconcile("r1")
    assert world.holders() == ["r1"]  # not back yet
    world.ship("r1")  # polled: returned
    world.reconcile("r1")

    assert world.phase("r1") == "Cancelled"
    assert world.holders() == []
    assert world.purifier.status.available == 2
    assert world.charged == {}
    assert world.history("r1") == [
        "Pending",
        "AwaitingPayment",
        "Confirmed",
        "D:Shipping",
        "D:Delivered",
        "Cancelling",
        "D:Returning",
        "D:Returned",
        "Cancelled",
    ]
    _assert_history_numbered(world, "r1")


def test_two_applications_for_the_last_unit() -> None:
    world = World(units=1)
    world.apply("r1")
    world.apply("r2")
    world.reconcile("r1")
    world.reconcile("r2")
    assert world.phase("r1") == "AwaitingPayment"
    assert world.phase("r2") == "Rejected"
    assert "r2" not in world.payments
    assert world.holders() == ["r1"]

    world.pay("r1", "declined")
    world.reconcile("r1")
    assert world.phase("r1") == "Rejected"
    assert world.holders() == []
    assert world.purifier.status.allocated == 0
    assert world.charged == {}
    assert [e.reason for e in world.events["r1"]] == [
        "PaymentRequested",
        "AwaitingPayment",
        "Rejected",
        "StockReleased",
    ]


def test_pay_later_expires_and_a_late_charge_is_refunded() -> None:
    world = World(units=1)
    world.apply("r1")
    world.reconcile("r1")
    world.pay("r1", "down")
    world.reconcile("r1")
    assert world.phase("r1") == "PaymentDeferred"
    assert world.requeue["r1"] == TIMEOUT.total_seconds()

    world.now += TIMEOUT + datetime.timedelta(seconds=1)
    world.reconcile("r1")
    assert world.phase("r1") == "Rejected"
    assert world.holders() == []
    assert world.payments["r1"].spec.refund is True

    # the payment system comes back: the unknown outcome is learned, then given back
    world.settle("r1")
    assert world.payments["r1"].status.phase is api_payment.PaymentPhase.REFUNDED
    assert world.charged == {}
    assert world.phase("r1") == "Rejected"

    world.delete("r1")
    world.reconcile("r1")
    assert world.gone == {"r1"}


def test_cancel_before_the_charge_left_costs_nothing() -> None:
    world = World(units=1)
    world.apply("r1")
    world.reconcile("r1")
    world.cancel("r1")
    world.reconcile("r1")
    assert world.phase("r1") == "Cancelling"
    assert world.holders() == []  # nothing shipped: the unit is back at once
    assert world.pay("r1") is payments.Call.VOID
    world.reconcile("r1")
    assert world.phase("r1") == "Cancelled"
    assert world.payments["r1"].status.attempts == 0
    assert world.charged == {}


def test_delete_while_shipping() -> None:
    world = World(units=1)
    world.apply("r1")
    world.reconcile("r1")
    world.pay("r1")
    world.reconcile("r1")
    world.ship("r1")
    world.reconcile("r1")
    world.delete("r1")
    world.reconcile("r1")
    assert world.gone == set()  # compensation first
    world.settle("r1")
    assert world.deliveries["r1"].status.phase is api_delivery.DeliveryPhase.CANCELLED
    assert world.payments["r1"].status.phase is api_payment.PaymentPhase.REFUNDED
    assert world.holders() == []
    assert world.gone == {"r1"}


def test_a_lost_charge_is_found_and_refunded_on_cancel() -> None:
    world = World(units=1)
    world.apply("r1")
    world.reconcile("r1")
    world.pay("r1", "lost")  # charged, but the answer never came back
    world.reconcile("r1")
    assert world.phase("r1") == "PaymentDeferred"
    assert world.charged == {"r1": FEE * 12}

    world.cancel("r1")
    world.reconcile("r1")
    assert world.phase("r1") == "Cancelling"
    assert world.pay("r1") is payments.Call.CHARGE  # not a void: money may have moved
    world.reconcile("r1")
    assert world.pay("r1") is payments.Call.REFUND
    world.reconcile("r1")
    assert world.phase("r1") == "Cancelled"
    assert world.charged == {}
    assert world.payments["r1"].status.attempts == 2


def test_deleting_a_rejected_rental_waits_for_its_refund() -> None:
    world = World(units=1)
    world.apply("r1")
    world.reconcile("r1")
    world.pay("r1", "lost")
    world.reconcile("r1")
    world.now += TIMEOUT
    world.reconcile("r1")
    assert world.phase("r1") == "Rejected"
    world.delete("r1")
    world.reconcile("r1")
    assert world.gone == set()  # the charge is not settled yet
    world.settle("r1")
    assert world.gone == {"r1"}
    assert world.charged == {}


def test_a_reservation_whose_record_was_lost_in_a_crash_is_not_taken_twice() -> None:
    world = World(units=2)
    world.apply("a")
    world.apply("b")
    world.reconcile("a", crash=True)  # the unit is counted, the rental's status never written
    assert (world.purifier.status.allocated, world.holders()) == (1, ["a"])
    world.reconcile("b")  # another write to the Purifier must keep a's unrecorded reservation
    world.reconcile("a")
    assert (world.purifier.status.allocated, world.holders()) == (2, ["a", "b"])
    world.reconcile("b")
    world.settle("a")
    world.settle("b")
    assert world.phase("a") == world.phase("b") == "Confirmed"
    world.apply("c")
    world.reconcile("c")  # the journal is tidied: both rentals recorded their units
    assert world.purifier.status.pending == []
    assert world.phase("c") == "Rejected"
    assert world.purifier.status.allocated == 2


def test_a_release_whose_record_was_lost_in_a_crash_is_not_given_twice() -> None:
    world = World(units=1)
    world.apply("a")
    world.reconcile("a")
    world.settle("a")
    assert world.phase("a") == "Confirmed"
    world.cancel("a")
    world.reconcile("a")
    while world.ship("a") is not None or world.pay("a") is not None:
        pass
    world.reconcile("a", crash=True)  # the unit went back; the rental never recorded it
    assert (world.purifier.status.allocated, world.holders()) == (0, [])
    world.apply("b")
    world.reconcile("b")  # takes the unit a gave back; a's journal entry must survive this write
    world.reconcile("a")
    world.reconcile("a")
    assert world.phase("a") == "Cancelled"
    assert (world.purifier.status.allocated, world.holders()) == (1, ["b"])
    world.apply("c")
    world.reconcile("c")
    assert world.phase("c") == "Rejected"
    assert world.purifier.status.pending == []  # a and b recorded their outcomes: tidied away


def test_cancelling_a_reservation_whose_record_was_lost_gives_the_unit_back_once() -> None:
    world = World(units=1)
    world.apply("a")
    world.reconcile("a", crash=True)
    world.cancel("a")
    world.settle("a")
    assert world.phase("a") == "Cancelled"
    assert (world.purifier.status.allocated, world.holders(), world.purifier.status.pending) == (0, [], [])
    world.apply("b")
    world.reconcile("b")
    assert (world.purifier.status.allocated, world.holders()) == (1, ["b"])


def test_an_approved_payment_nobody_owns_confirms_nothing_until_it_is_gone() -> None:
    world = World(units=1)
    world.leave_payment("r1")
    world.apply("r1")
    plan = world.reconcile("r1")
    assert world.phase("r1") is None
    assert world.holders() == []
    assert not world.payments
    assert not world.deliveries
    assert [e.reason for e in world.events["r1"]] == ["PaymentMismatch"]
    assert plan.requeue_after == rentals.MISMATCH_RECHECK_SECONDS
    world.reconcile("r1")
    assert [e.reason for e in world.events["r1"]] == ["PaymentMismatch"]  # told once

    del world.strangers["r1"]  # garbage collected, or deleted by a person
    world.reconcile("r1")
    world.settle("r1")
    assert world.phase("r1") == "Confirmed"
    assert world.holders() == ["r1"]
    assert world.charged == {"r1": FEE * 12}


# --- random walks -------------------------------------------------------------------------------------------
def _step(world: World, rng: random.Random, names: list[str]) -> None:
    name = rng.choice(names)
    roll = rng.random()
    if roll < 0.25:
        if name in world.payments:
            world.pay(name, rng.choice(["approved", "approved", "declined", "down", "lost", "open"]))
    elif roll < 0.45:
        if name in world.deliveries:
            world.ship(name, progress=rng.random() < 0.7)
    elif roll < 0.52:
        world.cancel(name)
    elif roll < 0.55:
        if world.rentals[name].metadata.deletion_timestamp is None:
            world.delete(name)
    elif roll < 0.6:
        world.now += datetime.timedelta(minutes=rng.choice([1, 30, 90]))
    elif roll < 0.68 and name not in world.gone:
        world.reconcile(name, crash=True)  # a reservation or release whose rental never recorded it
    elif roll < 0.72:
        world.strangers.pop(name, None)  # a stranger under the rental's Payment name goes away
    if name in world.gone:
        return
    before = world.phase(name)
    seen = len(world.rentals[name].status.history)
    world.reconcile(name)
    after = world.phase(name)
    assert after in FORWARD[before], (before, after)
    assert len(world.rentals[name].status.history) >= min(seen, api_rental.HISTORY_LIMIT)


@pytest.mark.parametrize("seed", range(30))
def test_random_walks_keep_the_invariants(seed: int) -> None:
    rng = random.Random(seed)
    units = rng.randint(0, 3)
    world = World(units=units)
    names = [f"r{i}" for i in range(rng.randint(1, 5))]
    for name in names:
        world.apply(name, months=rng.randint(1, 60))
        if rng.random() < 0.3:
            world.leave_payment(name)
    for _ in range(120):
        _step(world, rng, names)
        assert len(world.holders()) <= units
        assert world.purifier.status.allocated == len(world.holders())
        for name in names:
            _assert_history_numbered(world, name)

    for name in names:
        if name in world.gone:
            continue
        world.cancel(name)
        world.settle(name)
        world.settle(name)
        assert world.phase(name) in ("Cancelled", "Rejected"), name
    assert world.holders() == []
    assert world.purifier.status.allocated == 0
    assert world.charged == {}
    for name, payment in world.payments.items():
        assert payment.status.phase in (
            api_payment.PaymentPhase.REFUNDED,
            api_payment.PaymentPhase.DECLINED,
        ), name
        assert payment.spec.amount == FEE * world.rentals[name].spec.months
