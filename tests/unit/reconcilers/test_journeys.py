"""The reconcilers together: whole rentals driven through a small in-memory world, no cluster.

`World` plays the controllers' part the simplest way: it runs `rentals.decide` until the plan has no
actions (as the Rental controller does), carries out each action on in-memory objects, and plays the
partners through the payment, delivery and stock reconcilers; its clock only moves when a test says so,
so periods come due, declined charges are retried on the dunning schedule and terms run out. Journeys
check what a customer and the business would see at the end; the random walks check the invariants at
every step: stock is never over-allocated, phases only move forward, terminal phases are never left,
history is numbered without gaps, nobody is charged for a unit not held, no period is charged before it
is due or twice, and once everything settles nothing stays charged or held for a rental that is not in
force, beyond the periods a termination or non-payment keeps paid and the fee it charged.
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
from rental_operator.reconcilers import billing, conditions, contract, deliveries, payments, rentals, stock

START = datetime.datetime(2025, 6, 1, 9, 0, tzinfo=datetime.UTC)
TIMEOUT = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
PURIFIER = "aquapure-300"
FEE = 89_700
# Calendar months, three retries of a declined charge (4 attempts), 14 days to withdraw, 3 kept.
TERMS = contract.Terms(dunning=(DAY, 3 * DAY, 5 * DAY), withdrawal=14 * DAY, history=3)
Phase = api_payment.PaymentPhase
# Payment phases with no money held by the payment system for the charge.
NOTHING_HELD = (Phase.REFUNDED, Phase.DECLINED, Phase.FAILED)

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
    "Confirmed": {"Confirmed", "PastDue", "Cancelling", "Cancelled", "Completed"},
    "PastDue": {"PastDue", "Confirmed", "Cancelling", "Cancelled", "Completed"},
    "Cancelling": {"Cancelling", "Cancelled"},
    "Cancelled": {"Cancelled"},
    "Rejected": {"Rejected"},
    "Completed": {"Completed"},
}


def p(rental: str, period: int) -> str:
    """The name of a rental's Payment for `period`."""
    return rentals.payment_name(rental, period)


class World:
    def __init__(self, *, units: int = 1, mandatory_months: int = 0) -> None:
        self.now = START
        self.purifier = api_purifier.Purifier.model_validate(
            {
                "metadata": {"name": PURIFIER, "namespace": "shop", "generation": 1},
                "spec": {
                    "model": "AquaPure 300",
                    "monthlyFee": FEE,
                    "stock": units,
                    "mandatoryMonths": mandatory_months,
                },
            }
        )
        self.rentals: dict[str, api_rental.Rental] = {}
        self.payments: dict[str, api_payment.Payment] = {}  # by Payment name
        self.deliveries: dict[str, api_delivery.Delivery] = {}
        self.gone: set[str] = set()
        self.events: dict[str, list[rentals.Event]] = {}
        self.requeue: dict[str, float | None] = {}
        self.charged: dict[str, int] = {}  # money the payment partner holds, per Payment name
        self.approved: set[str] = set()  # Payment names the partner ever approved a charge for
        self.outcomes: dict[str, str] = {}  # the partner's record per attempt's idempotency key
        self.deleted: set[str] = set()  # Payment names deleted by the rentals (history pruned)
        # Approved Payments nobody owns under a rental's first Payment name (a leftover, or made by
        # hand), until garbage collection or a person removes them; by rental name
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
        """An approved Payment under the rental's first Payment name that no Rental owns, charging what
        the rental would."""
        self.strangers[name] = api_payment.Payment.model_validate(
            {
                "metadata": {"name": p(name, 1), "namespace": "shop", "uid": f"stranger-{name}"},
                "spec": {
                    "rental": name,
                    "period": 1,
                    "amount": FEE,
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
        first = p(name, 1)
        stranger = self.strangers.get(name) if first not in self.payments else None
        own = [payment for payment in self.payments.values() if payment.spec.rental == name]
        facts = rentals.Facts(
            rental=self.rentals[name],
            purifier=self.purifier,
            payment=self.payments.get(first),
            delivery=self.deliveries.get(name),
            now=self.now,
            deferral_timeout=TIMEOUT,
            # as the controller does: what is under the name is checked, its owner being nobody
            payment_mismatch=rentals.payment_mismatch(self.rentals[name], self.purifier, stranger, None)
            if stranger
            else None,
            charges={c.spec.period: c for c in own if c.spec.period is not None and c.spec.period >= 2},
            fee=self.payments.get(rentals.fee_payment_name(name)),
            terms=TERMS,
        )
        for _ in range(12):
            plan = rentals.decide(facts)
            self.events[name].extend(plan.events)
            if not plan.actions:
                break
            for action in plan.actions:
                facts = self._execute(name, facts, plan, action)
            facts = dataclasses.replace(facts, rental=facts.rental.model_copy(update={"status": plan.status}))
            if name in self.gone:
                break  # the object is going away: nothing more to write
        else:
            raise AssertionError("no steady plan")
        self.rentals[name] = facts.rental.model_copy(update={"status": recorded if crash else plan.status})
        self.requeue[name] = plan.requeue_after
        return plan

    def _execute(
        self, name: str, facts: rentals.Facts, plan: rentals.Plan, action: rentals.Action
    ) -> rentals.Facts:
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
            case rentals.Transfer():
                terms = plan.status.billing
                assert terms is not None and terms.periods_paid == terms.periods_total, "transferred unpaid"
                assert terms.term_ends_at is not None and self.now >= terms.term_ends_at, (
                    "before the term's end"
                )
                self._stock(name, releasing=True, transferring=True)
                return dataclasses.replace(facts, purifier=self.purifier)
            case rentals.CreatePayment(name=payment_name, spec=spec):
                self._check_new_charge(name, facts, plan, payment_name, spec)
                self.payments[payment_name] = api_payment.Payment.model_validate(
                    {
                        "metadata": {"name": payment_name, "namespace": "shop", "uid": f"pay-{payment_name}"},
                        "spec": spec.to_wire(),
                    }
                )
                return self._with(facts, payment_name)
            case rentals.RequestRefund(payment=payment_name):
                charge = self.payments[payment_name]
                assert charge.spec.rental == name, "a refund asked of another rental's charge"
                self.payments[payment_name] = charge.model_copy(
                    update={"spec": charge.spec.model_copy(update={"refund": True})}
                )
                return self._with(facts, payment_name)
            case rentals.RetryCharge(payment=payment_name, attempt=attempt):
                self._retry(name, plan, payment_name, attempt)
                return self._with(facts, payment_name)
            case rentals.DeletePayment(payment=payment_name):
                period = self._prune(name, plan, payment_name)
                if period == 1:
                    return dataclasses.replace(facts, payment=None)
                return dataclasses.replace(
                    facts, charges={k: c for k, c in facts.charges.items() if k != period}
                )
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

    def _check_new_charge(
        self,
        name: str,
        facts: rentals.Facts,
        plan: rentals.Plan,
        payment_name: str,
        spec: api_payment.PaymentSpec,
    ) -> None:
        """The promises a new charge keeps: one Payment per period (or fee), never under a taken name,
        at the locked price and under its own key; a period only for a unit held, in order and once due."""
        assert payment_name not in self.payments, "a second charge for one period"
        assert payment_name not in self.deleted, "a period charged again after its Payment was pruned"
        assert not (spec.period == 1 and name in self.strangers), (
            "a Payment created under a name that is taken"
        )
        assert spec.rental == name and spec.customer_id == f"c-{name}"
        uid = f"uid-{name}"
        if spec.period is None:
            assert payment_name == rentals.fee_payment_name(name)
            assert spec.idempotency_key == billing.fee_key(uid)
            terms = plan.status.billing
            assert terms is not None and terms.ending is api_rental.Ending.TERMINATION
            assert spec.amount == terms.fee_amount
            return
        assert payment_name == p(name, spec.period)
        assert spec.idempotency_key == billing.period_key(uid, spec.period)
        assert (spec.amount, spec.attempt) == (FEE, 1)
        held = stock.holds(self.purifier.status, uid, recorded=_records_unit(facts.rental))
        assert held, "charged for a unit not held"
        if spec.period >= 2:
            terms = plan.status.billing
            assert terms is not None and terms.anchor is not None and terms.ending is None
            assert terms.periods_paid == spec.period - 1, "a period charged out of order"
            assert self.now >= billing.period_due_at(TERMS.cycle, terms.anchor, spec.period), "charged early"

    def _retry(self, name: str, plan: rentals.Plan, payment_name: str, attempt: int) -> None:
        """Raise a declined charge's attempt: only once the previous attempt is known to be declined,
        one attempt at a time, and on the dunning schedule."""
        charge = self.payments[payment_name]
        assert charge.spec.rental == name and charge.spec.period is not None
        assert not charge.spec.refund, "a charge being given back is retried"
        assert charge.status.phase in (Phase.DECLINED, Phase.FAILED), charge.status.phase
        assert (charge.status.attempt or 1) == charge.spec.attempt == attempt - 1
        terms = plan.status.billing
        assert terms is not None and terms.anchor is not None
        due = billing.period_due_at(TERMS.cycle, terms.anchor, charge.spec.period)
        retry_at = billing.dunning_attempt_at(due, attempt, TERMS.dunning)
        assert retry_at is not None and self.now >= retry_at, "retried off the dunning schedule"
        self.payments[payment_name] = charge.model_copy(
            update={"spec": charge.spec.model_copy(update={"attempt": attempt})}
        )

    def _prune(self, name: str, plan: rentals.Plan, payment_name: str) -> int:
        """Delete a settled charge: paid, folded into status.billing, past the withdrawal period (nothing
        can ask for it back) and beyond the history kept. Its period."""
        charge = self.payments.pop(payment_name)
        assert charge.spec.rental == name and charge.spec.period is not None
        terms = plan.status.billing
        assert terms is not None and charge.spec.period <= terms.periods_paid, "deleted unfolded"
        assert charge.status.phase is Phase.APPROVED and not charge.spec.refund
        assert terms.withdrawal_ends_at is not None and self.now >= terms.withdrawal_ends_at
        kept = [c for c in self.payments.values() if c.spec.rental == name and c.spec.period]
        assert len(kept) >= TERMS.history, "deleted within the history kept"
        self.deleted.add(payment_name)
        return charge.spec.period

    def _with(self, facts: rentals.Facts, payment_name: str) -> rentals.Facts:
        """`facts` with the rental's Payment `payment_name` as it is now."""
        payment = self.payments[payment_name]
        if payment.spec.period is None:
            return dataclasses.replace(facts, fee=payment)
        if payment.spec.period == 1:
            return dataclasses.replace(facts, payment=payment)
        return dataclasses.replace(facts, charges={**facts.charges, payment.spec.period: payment})

    def _stock(self, name: str, *, releasing: bool, transferring: bool = False) -> stock.Outcome | None:
        """The stock allocator: one reservation, release or transfer, written to the Purifier; its outcome."""
        claim = stock.Claim(name, f"uid-{name}")
        status, outcomes = stock.settle(
            self.purifier,
            release=[claim] if releasing and not transferring else [],
            transfer=[claim] if transferring else [],
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
    def pay(self, payment_name: str, answer: str = "approved") -> payments.Call | None:
        """One pass of the Payment controller. `answer` is how the partner treats a new charge:
        approved, declined, down (a 5xx before anything happened), lost (charged, answer lost) or
        open (the breaker is open: no request leaves). Each attempt is sent under its own key
        (`<key>-a<attempt>`); a repeated key gets the first outcome back."""
        payment = self.payments[payment_name]
        call = payments.next_call(payment)
        if call is None:
            return None
        if call is payments.Call.VOID:
            assert payment_name not in self.charged
            status = payments.voided(payment, self.now)
        elif call is payments.Call.REFUND:
            self.charged.pop(payment_name, None)
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
            key = billing.attempt_key(
                payment.spec.idempotency_key, payment.status.attempt or payment.spec.attempt
            )
            outcome = self.outcomes.get(key)
            if outcome is None and answer in ("approved", "declined", "lost"):
                outcome = self.outcomes[key] = "declined" if answer == "declined" else "approved"
                if outcome == "approved":
                    assert payment_name not in self.approved, "charged twice for one period"
                    self.approved.add(payment_name)
                    self.charged[payment_name] = payment.spec.amount
            if outcome is None or answer == "lost":
                status = payments.charge_unavailable(payment, "timeout", self.now, attempts=attempts)
            elif outcome == "approved":
                status = payments.charge_approved(payment, f"tx-{key}", self.now, attempts=attempts)
            else:
                status = payments.charge_declined(payment, None, "card declined", self.now, attempts=attempts)
        self.payments[payment_name] = payment.model_copy(update={"status": status})
        return call

    def payments_of(self, name: str) -> list[str]:
        """The names of the rental's Payments, in the order they were created."""
        return [n for n, payment in self.payments.items() if payment.spec.rental == name]

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
            for payment_name in self.payments_of(name):
                if self.pay(payment_name, "approved") is not None:
                    moved = True
            if name in self.deliveries and self.ship(name) is not None:
                moved = True
            self.reconcile(name)
            if not moved:
                return
        raise AssertionError("did not settle")

    def deliver(self, name: str) -> None:
        """Ship the rental's unit and have it delivered, the rental looking after each step."""
        self.ship(name)  # created: shipping
        self.reconcile(name)
        self.ship(name)  # polled: delivered
        self.reconcile(name)

    def later(self, delta: datetime.timedelta, *names: str) -> None:
        """Time passes; each rental named is looked at again (as its requeue would)."""
        self.now += delta
        for name in names:
            self.reconcile(name)

    # --- reading ---
    def phase(self, name: str) -> str | None:
        phase = self.rentals[name].status.phase
        return phase.value if phase else None

    def billing(self, name: str) -> api_rental.Billing:
        terms = self.rentals[name].status.billing
        assert terms is not None
        return terms

    def history(self, name: str) -> list[str]:
        return [
            f"{e.kind[0]}:{e.phase}" if e.kind in ("Delivery", "Billing") else e.phase
            for e in self.rentals[name].status.history
        ]

    def reasons(self, name: str) -> list[str]:
        return [event.reason for event in self.events[name]]

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
    assert world.payments_of("r1") == ["r1-p1"]
    assert world.payments["r1-p1"].spec.amount == FEE  # one month's fee, not the term's
    assert world.payments["r1-p1"].spec.idempotency_key == "rental-uid-r1-p1"

    world.pay("r1-p1", "approved")
    world.reconcile("r1")
    assert world.phase("r1") == "Confirmed"
    assert world.charged == {"r1-p1": FEE}
    assert world.outcomes == {"rental-uid-r1-p1-a1": "approved"}
    assert world.billing("r1").anchor == START

    world.ship("r1")  # created: shipping
    world.reconcile("r1")
    world.ship("r1")  # polled: delivered
    world.reconcile("r1")
    assert rentals.is_resting(world.rentals["r1"].status)

    world.cancel("r1")
    world.reconcile("r1")
    assert world.phase("r1") == "Cancelling"
    assert world.billing("r1").ending is api_rental.Ending.WITHDRAWAL  # within 14 days of delivery
    world.pay("r1-p1")  # refund
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
    assert world.payments_of("r2") == []
    assert world.holders() == ["r1"]

    world.pay("r1-p1", "declined")
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
    world.pay("r1-p1", "down")
    world.reconcile("r1")
    assert world.phase("r1") == "PaymentDeferred"
    assert world.requeue["r1"] == TIMEOUT.total_seconds()

    world.now += TIMEOUT + datetime.timedelta(seconds=1)
    world.reconcile("r1")
    assert world.phase("r1") == "Rejected"
    assert world.holders() == []
    assert world.payments["r1-p1"].spec.refund is True

    # the payment system comes back: the unknown outcome is learned, then given back
    world.settle("r1")
    assert world.payments["r1-p1"].status.phase is api_payment.PaymentPhase.REFUNDED
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
    assert world.pay("r1-p1") is payments.Call.VOID
    world.reconcile("r1")
    assert world.phase("r1") == "Cancelled"
    assert world.payments["r1-p1"].status.attempts == 0
    assert world.charged == {}


def test_delete_while_shipping() -> None:
    world = World(units=1)
    world.apply("r1")
    world.reconcile("r1")
    world.pay("r1-p1")
    world.reconcile("r1")
    world.ship("r1")
    world.reconcile("r1")
    world.delete("r1")
    world.reconcile("r1")
    assert world.gone == set()  # compensation first
    world.settle("r1")
    assert world.deliveries["r1"].status.phase is api_delivery.DeliveryPhase.CANCELLED
    assert world.payments["r1-p1"].status.phase is api_payment.PaymentPhase.REFUNDED
    assert world.holders() == []
    assert world.gone == {"r1"}


def test_a_lost_charge_is_found_and_refunded_on_cancel() -> None:
    world = World(units=1)
    world.apply("r1")
    world.reconcile("r1")
    world.pay("r1-p1", "lost")  # charged, but the answer never came back
    world.reconcile("r1")
    assert world.phase("r1") == "PaymentDeferred"
    assert world.charged == {"r1-p1": FEE}

    world.cancel("r1")
    world.reconcile("r1")
    assert world.phase("r1") == "Cancelling"
    assert world.pay("r1-p1") is payments.Call.CHARGE  # not a void: money may have moved
    world.reconcile("r1")
    assert world.pay("r1-p1") is payments.Call.REFUND
    world.reconcile("r1")
    assert world.phase("r1") == "Cancelled"
    assert world.charged == {}
    assert world.payments["r1-p1"].status.attempts == 2
    assert list(world.outcomes) == ["rental-uid-r1-p1-a1"]  # learned under the same attempt's key


def test_deleting_a_rejected_rental_waits_for_its_refund() -> None:
    world = World(units=1)
    world.apply("r1")
    world.reconcile("r1")
    world.pay("r1-p1", "lost")
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
    while world.ship("a") is not None or world.pay("a-p1") is not None:
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
    assert world.charged == {"r1-p1": FEE}


# --- the monthly contract ---------------------------------------------------------------------------------
def _due(period: int) -> datetime.datetime:
    """When period `period` of a rental paid at START is due (calendar months from the anchor)."""
    return billing.period_due_at(TERMS.cycle, START, period)


def _in_force(world: World, name: str, *, months: int = 12) -> None:
    """Apply, pay period 1 and receive the unit, all at START: the anchor is START."""
    world.apply(name, months=months)
    world.reconcile(name)
    world.pay(p(name, 1))
    world.reconcile(name)
    world.deliver(name)
    assert world.phase(name) == "Confirmed"
    assert world.billing(name).anchor == START


def _charge(world: World, name: str, period: int, answer: str = "approved") -> None:
    """At period `period`'s due time: the rental asks for it, the payment system answers."""
    world.now = max(world.now, _due(period))
    world.reconcile(name)
    assert world.pay(p(name, period), answer) is payments.Call.CHARGE
    world.reconcile(name)


def _conditions(world: World, name: str) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in world.rentals[name].status.conditions}


def test_a_rental_in_force_is_charged_month_by_month() -> None:
    world = World(units=1)
    _in_force(world, "r1")
    assert world.requeue["r1"] == (_due(2) - START).total_seconds()  # looked at again when period 2 is due

    world.later(_due(2) - START - datetime.timedelta(seconds=1), "r1")
    assert world.payments_of("r1") == ["r1-p1"]  # not a second early
    world.later(datetime.timedelta(seconds=1), "r1")
    assert world.payments_of("r1") == ["r1-p1", "r1-p2"]
    second = world.payments["r1-p2"].spec
    assert (second.period, second.amount, second.idempotency_key) == (2, FEE, "rental-uid-r1-p2")
    world.pay("r1-p2")
    world.reconcile("r1")
    terms = world.billing("r1")
    assert (terms.periods_paid, terms.paid_amount, terms.next_charge_at) == (2, 2 * FEE, _due(3))
    assert world.phase("r1") == "Confirmed"
    assert _conditions(world, "r1")["Paid"] == ("True", "PaidUp")

    _charge(world, "r1", 3)
    assert world.billing("r1").periods_paid == 3
    assert world.charged == {"r1-p1": FEE, "r1-p2": FEE, "r1-p3": FEE}
    assert list(world.outcomes) == [f"rental-uid-r1-p{k}-a1" for k in (1, 2, 3)]
    assert world.history("r1")[-2:] == ["B:Charged", "B:Charged"]
    assert world.holders() == ["r1"]
    _assert_history_numbered(world, "r1")


def test_periods_missed_while_the_operator_was_down_are_charged_in_order_one_each() -> None:
    world = World(units=1)
    _in_force(world, "r1")
    world.later(_due(4) - START + DAY, "r1")  # three months later
    assert world.payments_of("r1") == ["r1-p1", "r1-p2"]  # the oldest first, never collapsed
    world.pay("r1-p2")
    world.reconcile("r1")
    assert world.payments_of("r1") == ["r1-p1", "r1-p2", "r1-p3"]
    world.pay("r1-p3")
    world.reconcile("r1")
    world.pay("r1-p4")
    world.reconcile("r1")
    assert world.billing("r1").periods_paid == 4
    # period 5 is not due yet; period 1 is past the history kept (3) and the withdrawal period
    assert world.payments_of("r1") == ["r1-p2", "r1-p3", "r1-p4"]
    assert world.deleted == {"r1-p1"}
    assert world.charged == {f"r1-p{k}": FEE for k in (1, 2, 3, 4)}


def test_a_declined_month_is_retried_on_the_dunning_schedule_then_paid() -> None:
    world = World(units=1)
    _in_force(world, "r1")
    _charge(world, "r1", 2, "declined")
    assert world.phase("r1") == "PastDue"
    past_due = world.billing("r1").past_due
    assert past_due is not None
    assert (past_due.period, past_due.attempts, past_due.next_attempt_at) == (2, 1, _due(2) + DAY)
    assert _conditions(world, "r1")["Paid"] == ("False", "ChargeDeclined")
    assert _conditions(world, "r1")["Ready"] == ("True", "Confirmed")  # still in force
    assert world.holders() == ["r1"]
    assert world.requeue["r1"] == DAY.total_seconds()

    world.later(DAY - datetime.timedelta(seconds=1), "r1")
    assert world.payments["r1-p2"].spec.attempt == 1  # not before the schedule says
    world.later(datetime.timedelta(seconds=1), "r1")
    assert world.payments["r1-p2"].spec.attempt == 2
    assert world.pay("r1-p2", "approved") is payments.Call.CHARGE
    world.reconcile("r1")

    assert world.phase("r1") == "Confirmed"
    terms = world.billing("r1")
    assert (terms.periods_paid, terms.past_due) == (2, None)
    assert world.outcomes == {
        "rental-uid-r1-p1-a1": "approved",
        "rental-uid-r1-p2-a1": "declined",
        "rental-uid-r1-p2-a2": "approved",  # the retry is a charge of its own key
    }
    assert world.charged == {"r1-p1": FEE, "r1-p2": FEE}
    assert world.history("r1")[-4:] == ["B:ChargeDeclined", "PastDue", "B:Charged", "Confirmed"]
    assert world.reasons("r1").count("ChargeRetried") == 1


def test_a_month_unpaid_after_every_retry_ends_the_contract_for_non_payment() -> None:
    world = World(units=1, mandatory_months=12)
    _in_force(world, "r1")
    _charge(world, "r1", 2, "declined")
    for attempt, delay in enumerate(TERMS.dunning, start=2):
        world.now = _due(2) + delay
        world.reconcile("r1")
        assert world.payments["r1-p2"].spec.attempt == attempt
        world.pay("r1-p2", "declined")
        world.reconcile("r1")

    assert world.phase("r1") == "Cancelling"
    terms = world.billing("r1")
    assert (terms.ending, terms.fee_amount) == (api_rental.Ending.NON_PAYMENT, None)
    assert world.deliveries["r1"].spec.cancelled is True  # the unit is collected
    assert world.holders() == ["r1"]  # until it is back
    world.settle("r1")

    assert world.phase("r1") == "Cancelled"
    assert world.deliveries["r1"].status.phase is api_delivery.DeliveryPhase.RETURNED
    assert world.holders() == []
    assert world.purifier.status.available == 1
    assert world.charged == {"r1-p1": FEE}  # nothing refunded, no fee
    assert world.payments_of("r1") == ["r1-p1", "r1-p2"]
    assert world.payments["r1-p1"].spec.refund is False
    assert _conditions(world, "r1")["Paid"] == ("False", "NonPayment")
    assert len(world.outcomes) == 1 + 1 + len(TERMS.dunning)  # every attempt under its own key


def test_cancelling_after_the_withdrawal_period_keeps_the_paid_months_and_charges_one_fee() -> None:
    world = World(units=1, mandatory_months=12)
    _in_force(world, "r1")
    _charge(world, "r1", 2)
    assert world.billing("r1").withdrawal_ends_at == START + TERMS.withdrawal
    world.later(DAY, "r1")
    world.cancel("r1")
    world.reconcile("r1")

    assert world.phase("r1") == "Cancelling"
    fee = FEE * (12 - 2) * 10 // 100
    terms = world.billing("r1")
    assert (terms.ending, terms.fee_amount, terms.next_charge_at) == (
        api_rental.Ending.TERMINATION,
        fee,
        None,
    )
    assert world.payments_of("r1") == ["r1-p1", "r1-p2", "r1-fee"]
    charge = world.payments["r1-fee"].spec
    assert (charge.period, charge.amount, charge.idempotency_key) == (None, fee, "rental-uid-r1-fee")
    assert not any(world.payments[n].spec.refund for n in ("r1-p1", "r1-p2"))
    world.settle("r1")
    world.later(_due(3) - world.now + DAY, "r1", "r1")  # the next month comes: billing has stopped

    assert world.phase("r1") == "Cancelled"
    assert world.charged == {"r1-p1": FEE, "r1-p2": FEE, "r1-fee": fee}
    assert world.payments_of("r1") == ["r1-p1", "r1-p2", "r1-fee"]  # one fee, no period 3
    assert (world.billing("r1").paid_amount, world.billing("r1").refunded_amount) == (2 * FEE, 0)
    assert world.holders() == []
    assert world.deliveries["r1"].status.phase is api_delivery.DeliveryPhase.RETURNED
    assert _conditions(world, "r1")["Paid"] == ("False", "Terminated")
    assert world.history("r1").count("B:FeeCharged") == 1


def test_cancelling_within_the_withdrawal_period_refunds_every_month() -> None:
    world = World(units=1, mandatory_months=12)
    world.apply("r1")
    world.reconcile("r1")
    world.pay("r1-p1")
    world.reconcile("r1")
    world.later(_due(2) - START, "r1")  # a month goes by with the unit never delivered
    world.pay("r1-p2")
    world.reconcile("r1")
    world.deliver("r1")
    world.cancel("r1")
    world.reconcile("r1")
    assert world.billing("r1").ending is api_rental.Ending.WITHDRAWAL
    world.settle("r1")
    assert world.phase("r1") == "Cancelled"
    assert world.charged == {}
    assert world.billing("r1").refunded_amount == 2 * FEE
    assert rentals.fee_payment_name("r1") not in world.payments


def test_a_term_paid_to_its_end_completes_and_the_unit_becomes_the_customers() -> None:
    world = World(units=1)
    _in_force(world, "r1", months=3)
    _charge(world, "r1", 2)
    _charge(world, "r1", 3)
    terms = world.billing("r1")
    assert (terms.periods_paid, terms.next_charge_at) == (3, None)
    assert world.history("r1")[-2:] == ["B:Charged", "B:TermEnding"]
    end = billing.term_ends_at(TERMS.cycle, START, 3)
    assert terms.term_ends_at == end
    world.later(end - world.now - datetime.timedelta(seconds=1), "r1")
    assert world.phase("r1") == "Confirmed"
    assert world.requeue["r1"] == 1.0

    world.later(datetime.timedelta(seconds=1), "r1")
    assert world.phase("r1") == "Completed"
    assert world.holders() == []
    status = world.purifier.status
    assert (status.allocated, status.transferred, status.available) == (0, 1, 0)
    assert world.deliveries["r1"].status.phase is api_delivery.DeliveryPhase.DELIVERED
    assert world.deliveries["r1"].spec.cancelled is False  # kept by the customer, never collected
    assert world.charged == {"r1-p1": FEE, "r1-p2": FEE, "r1-p3": FEE}
    assert _conditions(world, "r1")["StockReserved"] == ("False", "Transferred")
    assert _conditions(world, "r1")["Ready"] == ("False", "Completed")
    assert rentals.is_resting(world.rentals["r1"].status)

    world.later(_due(5) - world.now, "r1")  # nothing more is owed
    world.cancel("r1")  # nor undone
    world.reconcile("r1")
    world.delete("r1")
    world.reconcile("r1")
    assert world.gone == {"r1"}
    assert world.phase("r1") == "Completed"
    assert world.charged == {"r1-p1": FEE, "r1-p2": FEE, "r1-p3": FEE}
    assert world.payments_of("r1") == ["r1-p1", "r1-p2", "r1-p3"]
    assert world.purifier.status.transferred == 1
    world.apply("r2")
    world.reconcile("r2")
    assert world.phase("r2") == "Rejected"  # the unit is the customer's now, not stock


def test_settled_months_beyond_the_history_are_deleted_once_the_withdrawal_period_is_over() -> None:
    world = World(units=1)
    _in_force(world, "r1", months=6)
    for period in (2, 3, 4, 5):
        _charge(world, "r1", period)
    assert world.billing("r1").periods_paid == 5
    assert world.payments_of("r1") == ["r1-p3", "r1-p4", "r1-p5"]  # RENTAL_PAYMENT_HISTORY kept
    assert world.deleted == {"r1-p1", "r1-p2"}
    assert world.billing("r1").paid_amount == 5 * FEE  # their outcome stays in status.billing

    world.later(DAY, "r1")
    world.cancel("r1")
    world.reconcile("r1")
    world.settle("r1")
    assert world.phase("r1") == "Cancelled"
    assert sum(world.charged.values()) == 5 * FEE  # a termination past the mandatory period: no fee


def test_an_early_deleted_history_never_blocks_a_withdrawal() -> None:
    """Nothing is pruned while a withdrawal may still refund it."""
    world = World(units=1)
    world.apply("r1", months=6)
    world.reconcile("r1")
    world.pay("r1-p1")
    world.reconcile("r1")
    for period in (2, 3, 4, 5):  # months go by with the unit still on its way
        _charge(world, "r1", period)
    assert world.deleted == set()
    world.cancel("r1")
    world.reconcile("r1")
    world.settle("r1")
    assert world.billing("r1").ending is api_rental.Ending.WITHDRAWAL
    assert world.charged == {}
    assert world.billing("r1").refunded_amount == 5 * FEE


def test_a_month_approved_just_before_a_termination_is_counted_as_paid() -> None:
    world = World(units=1, mandatory_months=3)
    _in_force(world, "r1", months=3)
    _charge(world, "r1", 2)
    world.later(_due(3) - world.now, "r1")
    assert world.payments_of("r1")[-1] == "r1-p3"  # being charged
    world.pay("r1-p3")  # approved; the Payment's event and the customer's cancellation arrive together
    world.cancel("r1")
    world.reconcile("r1")
    world.settle("r1")

    assert world.phase("r1") == "Cancelled"
    terms = world.billing("r1")
    held = sum(world.charged.values())
    # the contract's record matches the money kept: every month the customer paid, and a fee only for
    # the mandatory months still unpaid (none: all 3 are paid)
    assert held == terms.paid_amount + (terms.fee_amount or 0)
    assert (terms.periods_paid, terms.fee_amount) == (3, None)


# --- random walks -------------------------------------------------------------------------------------------
# How far the clock may jump in one step: within a deferral, past it, past a dunning retry, past the
# withdrawal window, past a due date.
STEPS = 200
JUMPS = [datetime.timedelta(minutes=m) for m in (1, 30, 90)] + [DAY, 4 * DAY, 16 * DAY, 31 * DAY]


def _step(world: World, rng: random.Random, names: list[str]) -> None:
    name = rng.choice(names)
    roll = rng.random()
    if roll < 0.25:
        # the Payment controller works on what has something to do (a settled one is left alone)
        own = [n for n in world.payments_of(name) if payments.next_call(world.payments[n]) is not None]
        if own:
            answer = rng.choice(["approved", "approved", "approved", "declined", "down", "lost", "open"])
            world.pay(rng.choice(own), answer)
    elif roll < 0.45:
        if name in world.deliveries:
            world.ship(name, progress=rng.random() < 0.7)
    elif roll < 0.46:
        world.cancel(name)
    elif roll < 0.47:
        if world.rentals[name].metadata.deletion_timestamp is None:
            world.delete(name)
    elif roll < 0.62:
        world.now += rng.choice(JUMPS)
    elif roll < 0.68 and name not in world.gone:
        world.reconcile(name, crash=True)  # a reservation or release whose rental never recorded it
    elif roll < 0.7:
        world.strangers.pop(name, None)  # a stranger under the rental's Payment name goes away
    if name in world.gone:
        return
    before = world.phase(name)
    seen = len(world.rentals[name].status.history)
    world.reconcile(name)
    after = world.phase(name)
    assert after in FORWARD[before], (before, after)
    assert len(world.rentals[name].status.history) >= min(seen, api_rental.HISTORY_LIMIT)


def _assert_money_settled(world: World, name: str) -> None:
    """What the payment partner holds for a settled rental is what its contract keeps: nothing after
    a withdrawal or a rejection; the periods paid (and a fee charged) after a termination, non-payment
    or a completed term. Every other charge is refunded, declined or failed."""
    rental = world.rentals[name]
    terms = rental.status.billing
    held = {n: amount for n, amount in world.charged.items() if n.startswith(f"{name}-")}
    kept = terms is not None and terms.anchor is not None and terms.ending is not api_rental.Ending.WITHDRAWAL
    for payment_name in world.payments_of(name):
        payment = world.payments[payment_name]
        if payment.spec.period is None:
            assert kept and terms is not None and terms.ending is api_rental.Ending.TERMINATION, name
            assert payment.spec.amount == terms.fee_amount
        else:
            assert payment.spec.amount == FEE, payment_name  # one month's fee, whatever the term
        stays = (
            kept
            and terms is not None
            and payment.status.phase is Phase.APPROVED
            and (payment.spec.period is None or payment.spec.period <= terms.periods_paid)
            and not payment.spec.refund
        )
        assert stays or payment.status.phase in NOTHING_HELD, (payment_name, payment.status.phase)
    if not kept:
        assert held == {}, name
        return
    assert terms is not None
    periods = {n: amount for n, amount in held.items() if n != rentals.fee_payment_name(name)}
    assert sum(periods.values()) == terms.paid_amount == FEE * terms.periods_paid, name
    assert set(periods) == {p(name, k) for k in range(1, terms.periods_paid + 1)}, name
    if terms.ending is not api_rental.Ending.TERMINATION:
        assert rentals.fee_payment_name(name) not in held, "a fee charged for non-payment or a full term"
    if rental.status.phase is api_rental.RentalPhase.COMPLETED:
        assert terms.periods_paid == terms.periods_total == rental.spec.months


def _walk(seed: int) -> tuple[World, list[str], int]:
    """A world of 0 to 3 units and 1 to 5 applications, walked STEPS random steps, checking at each one
    that stock is never over-allocated and history is numbered; the world, its rentals, its units."""
    rng = random.Random(seed)
    units = rng.randint(0, 3)
    world = World(units=units, mandatory_months=rng.choice([0, 0, 3, 12]))
    names = [f"r{i}" for i in range(rng.randint(1, 5))]
    for name in names:
        world.apply(name, months=rng.choice([1, 2, 3, 6, 12, 60]))
        if rng.random() < 0.3:
            world.leave_payment(name)
    for _ in range(STEPS):
        _step(world, rng, names)
        assert len(world.holders()) + world.purifier.status.transferred <= units
        assert world.purifier.status.allocated == len(world.holders())
        for name in names:
            _assert_history_numbered(world, name)
    return world, names, units


@pytest.mark.parametrize("seed", range(30))
def test_random_walks_keep_the_invariants(seed: int) -> None:
    world, names, units = _walk(seed)
    for name in names:
        if name in world.gone:
            continue
        world.cancel(name)
        # Every other seed, the payment system answers what is in flight before the rental sees the
        # cancellation (an approval racing a termination: counted as paid, never charged for twice).
        if seed % 2:
            world.reconcile(name)
        world.settle(name)
        world.settle(name)
        assert world.phase(name) in ("Cancelled", "Rejected", "Completed"), name
    assert world.holders() == []
    assert world.purifier.status.allocated == 0
    completed = [n for n in names if world.phase(n) == "Completed"]
    assert world.purifier.status.transferred == len(completed)
    assert world.purifier.status.available == units - len(completed)
    for name in completed:  # kept by the customer, not returned
        assert world.deliveries[name].status.phase is api_delivery.DeliveryPhase.DELIVERED
    for name in names:
        _assert_money_settled(world, name)


def test_the_random_walks_reach_the_contract_s_every_ending() -> None:
    """The walks are worth their invariants only if they get there: recurring charges, declines retried,
    each way a contract ends."""
    seen: set[str] = set()
    for seed in range(30):
        world, names, _ = _walk(seed)
        for name in names:
            seen.update(world.history(name))
            terms = world.rentals[name].status.billing
            if terms is not None and terms.ending is not None:
                seen.add(terms.ending.value)
        seen.update(f"attempt{payment.spec.attempt}" for payment in world.payments.values())
        seen.update(f"period{payment.spec.period}" for payment in world.payments.values())
        seen.update("pruned" for _ in world.deleted)
    assert {"Completed", "PastDue", "B:Charged", "B:ChargeDeclined", "period4", "attempt3"} <= seen, seen
    assert {"Withdrawal", "Termination", "B:FeeCharged", "pruned"} <= seen, seen
