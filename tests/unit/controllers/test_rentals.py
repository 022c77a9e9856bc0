"""controllers.rentals: a Rental's pass executes the saga's plan against the API, writes its status
once, and texts the customer; its Payment and Delivery are its own only if they say so (finding 6)."""

from __future__ import annotations

import datetime
from typing import Any

from rental_operator import kubeapi
from rental_operator.controllers import deliveries, payments, rentals
from rental_operator.reconcilers import rentals as decisions

RENTAL = ("rental", "shop", "kim")


def _reconcile(world: Any, name: str = "kim") -> None:
    rentals.reconcile(world.ctx, "shop", name)


def _applied(world: Any, make: Any, *, stock: int = 2) -> dict[str, Any]:
    world.add(make.purifier(stock=stock))
    return dict(world.add(make.rental()))


def _cancel(world: Any) -> None:
    """The customer sets spec.cancelled; the rental's stored view is dropped as a watch would update it."""
    rental = world.kube.body("Rental", "kim")
    world.kube.merge_patch(rentals.RESOURCE, rental, {"spec": {"cancelled": True}})
    world.ctx.rentals.forget(rental)


def test_a_first_pass_reserves_creates_the_payment_and_writes_the_status_once(world: Any, make: Any) -> None:
    applied = _applied(world, make)
    _reconcile(world)

    rental = world.kube.body("Rental", "kim")
    assert rental["metadata"]["finalizers"] == [decisions.FINALIZER]
    assert rental["status"]["phase"] == "AwaitingPayment"
    assert world.kube.count("replace_status", "Rental") == 1
    assert world.kube.status("Purifier", "aqua")["allocated"] == 1
    payment = world.kube.body("Payment", "kim-p1")
    assert payment["metadata"]["ownerReferences"] == [make.owner(applied)]
    assert payment["spec"]["idempotencyKey"] == f"rental-{applied['metadata']['uid']}-p1"
    assert (payment["spec"]["period"], payment["spec"]["amount"]) == (1, 30_000)  # one month, not the term
    billing = world.kube.status("Rental", "kim")["billing"]  # the terms are locked with the first charge
    assert (billing["monthlyFee"], billing["currency"], billing["periodsTotal"]) == (30_000, "KRW", 12)
    assert world.events.reasons("kim") == ["PaymentRequested", "AwaitingPayment"]
    # "application received", then "reserved; taking payment"
    assert [m["key"] for m in world.sms.sent] == [f"sms-{applied['metadata']['uid']}-{n}" for n in (1, 2)]


def test_a_whole_rental_through_the_three_controllers(world: Any, make: Any) -> None:
    applied = _applied(world, make)
    _reconcile(world)
    payments.reconcile(world.ctx, "shop", "kim-p1")  # charges, then reconciles the rental at once
    assert world.kube.status("Rental", "kim")["phase"] == "Confirmed"
    delivery = world.kube.body("Delivery", "kim")
    assert delivery["metadata"]["ownerReferences"] == [make.owner(applied)]

    deliveries.reconcile(world.ctx, "shop", "kim")
    assert world.kube.status("Rental", "kim")["delivery"]["phase"] == "Shipping"
    world.shipping.move("ship-1", "delivered")
    world.scheduler.run("Delivery", "shop", "kim")
    status = world.kube.status("Rental", "kim")
    assert status["delivery"] == {"name": "kim", "phase": "Delivered", "trackingNumber": "TRK-1"}
    assert world.conditions("Rental", "kim")["DeliveryStarted"] == ("True", "Delivered")
    assert len(world.payments.charges) == 1


def test_out_of_stock_is_rejected_without_a_payment(world: Any, make: Any) -> None:
    world.add(make.purifier(stock=0))
    world.add(make.rental())
    _reconcile(world)
    assert world.kube.status("Rental", "kim")["phase"] == "Rejected"
    assert world.conditions("Rental", "kim")["StockReserved"] == ("False", "OutOfStock")
    assert world.kube.body("Payment", "kim-p1") is None


def test_a_rental_that_changed_meanwhile_is_decided_again_from_a_fresh_read(world: Any, make: Any) -> None:
    _applied(world, make)
    world.kube.fail("replace_status", kubeapi.Conflict("modified"))  # the Purifier's write
    _reconcile(world)
    assert world.kube.status("Rental", "kim")["phase"] == "AwaitingPayment"
    assert world.kube.status("Purifier", "aqua")["allocated"] == 1


def test_a_failed_pass_is_retried(world: Any, make: Any) -> None:
    _applied(world, make)
    world.kube.fail("create", RuntimeError("API server went away"))
    _reconcile(world)
    assert world.scheduler.delay(*RENTAL) == 2.0
    world.scheduler.run(*RENTAL)
    assert world.kube.status("Rental", "kim")["phase"] == "AwaitingPayment"
    assert world.kube.count("create", "Payment") == 2


def test_cancelling_asks_the_rentals_own_payment_and_delivery_by_uid(world: Any, make: Any) -> None:
    _applied(world, make)
    _reconcile(world)
    payments.reconcile(world.ctx, "shop", "kim-p1")
    deliveries.reconcile(world.ctx, "shop", "kim")
    _cancel(world)
    _reconcile(world)
    assert world.kube.body("Payment", "kim-p1")["spec"]["refund"] is True
    assert world.kube.body("Delivery", "kim")["spec"]["cancelled"] is True
    deliveries.reconcile(world.ctx, "shop", "kim")  # as the Delivery's watch event would
    payments.reconcile(world.ctx, "shop", "kim-p1")
    assert world.kube.status("Rental", "kim")["phase"] == "Cancelled"
    assert world.kube.status("Purifier", "aqua")["allocated"] == 0
    assert len(world.payments.refunds) == 1


def test_a_flag_is_never_set_on_a_stranger_that_took_the_name_meanwhile(world: Any, make: Any) -> None:
    _applied(world, make)
    _reconcile(world)
    payment = world.kube.body("Payment", "kim-p1")
    world.ctx.payments.observe(payment)  # the store still holds the rental's own
    world.kube.remove("Payment", "kim-p1")
    world.add(make.payment(owners=payment["metadata"]["ownerReferences"]))  # same name, a new uid
    _cancel(world)
    _reconcile(world)
    assert world.kube.body("Payment", "kim-p1")["spec"]["refund"] is False
    assert world.scheduler.delay(*RENTAL) == 2.0  # the pass failed; it is decided again on fresh facts


# --- finding 6: a stranger under the rental's Payment or Delivery name -------------------------------------
APPROVED = {"phase": "Approved", "transactionId": "tx-stale", "attempts": 1}


def _assert_blocked_by_a_stranger_payment(world: Any, *, held: int) -> None:
    status = world.kube.status("Rental", "kim")
    assert status.get("phase") != "Confirmed"
    assert "payment" not in status
    assert world.conditions("Rental", "kim")["Paid"] == ("False", "PaymentMismatch")
    assert world.conditions("Rental", "kim")["Ready"] == ("False", "PaymentMismatch")
    assert "Payment 'kim-p1' is not this rental's" in status["message"]
    assert world.kube.body("Delivery", "kim") is None
    assert world.kube.status("Purifier", "aqua").get("allocated", 0) == held
    assert world.events.reasons("kim").count("PaymentMismatch") == 1
    assert world.scheduler.delay(*RENTAL) == decisions.MISMATCH_RECHECK_SECONDS + 0.5


def test_an_approved_payment_made_by_hand_does_not_confirm_a_new_rental(world: Any, make: Any) -> None:
    world.add(make.payment(status=APPROVED))
    world.ctx.payments.observe(world.kube.body("Payment", "kim-p1"))  # seen by the watch
    _applied(world, make)
    _reconcile(world)
    _assert_blocked_by_a_stranger_payment(world, held=0)
    assert "no Rental owns it" in world.kube.status("Rental", "kim")["message"]

    world.scheduler.run(*RENTAL)  # looking again reports nothing new
    assert world.events.reasons("kim").count("PaymentMismatch") == 1

    stranger = world.kube.body("Payment", "kim-p1")
    world.kube.remove("Payment", "kim-p1")
    world.ctx.payments.forget(stranger)  # the watch's DELETED event
    world.scheduler.run(*RENTAL)
    assert world.kube.status("Rental", "kim")["phase"] == "AwaitingPayment"
    assert world.kube.body("Payment", "kim-p1")["metadata"]["ownerReferences"][0]["name"] == "kim"


def test_a_payment_left_by_a_deleted_rental_of_the_same_name_is_not_this_ones(world: Any, make: Any) -> None:
    old = {"metadata": {"name": "kim", "uid": "uid-deleted"}}
    world.add(make.payment(owners=[make.owner(old)], key="rental-uid-deleted-p1", status=APPROVED))
    world.ctx.payments.observe(world.kube.body("Payment", "kim-p1"))
    _applied(world, make)
    _reconcile(world)
    _assert_blocked_by_a_stranger_payment(world, held=0)
    assert "another Rental (uid uid-deleted)" in world.kube.status("Rental", "kim")["message"]


def test_a_stranger_found_only_by_creating_the_payment_is_not_taken(world: Any, make: Any) -> None:
    """Not in the store yet: the Payment's create answers with the existing object, checked the same."""
    world.add(make.payment(status=APPROVED))
    _applied(world, make)
    _reconcile(world)
    _assert_blocked_by_a_stranger_payment(world, held=1)  # reserved before the name turned out taken


def test_a_delivery_made_by_hand_does_not_ship_for_a_paid_rental(world: Any, make: Any) -> None:
    world.add(make.delivery(status={"phase": "Delivered", "shipmentId": "s-0", "trackingNumber": "T-0"}))
    world.ctx.deliveries.observe(world.kube.body("Delivery", "kim"))
    _applied(world, make)
    _reconcile(world)
    payments.reconcile(world.ctx, "shop", "kim-p1")

    status = world.kube.status("Rental", "kim")
    assert status["phase"] == "Confirmed"
    assert "delivery" not in status
    assert world.conditions("Rental", "kim")["DeliveryStarted"] == ("False", "DeliveryMismatch")
    assert "Delivery 'kim' is not this rental's" in status["message"]
    assert "DeliveryMismatch" in world.events.reasons("kim")
    assert world.shipping.shipments == {}
    assert world.kube.body("Delivery", "kim")["metadata"]["ownerReferences"] == []


# --- the monthly contract through the controllers, with short periods and a clock that moves ----------------
PERIOD = datetime.timedelta(seconds=30)


def _in_force(world: Any, make: Any, *, months: int = 3, **settings: Any) -> dict[str, Any]:
    """Configure 30 s periods, apply, pay period 1 and have the unit delivered, all at `make.now`."""
    world.configure(billing_period="30s", withdrawal_period="10s", dunning_schedule="5s", **settings)
    world.add(make.purifier(stock=1))
    applied = dict(world.add(make.rental(months=months)))
    _reconcile(world)
    payments.reconcile(world.ctx, "shop", "kim-p1")  # approved; the rental is reconciled at once
    deliveries.reconcile(world.ctx, "shop", "kim")
    world.shipping.move("ship-1", "delivered")
    world.scheduler.run("Delivery", "shop", "kim")
    status = world.kube.status("Rental", "kim")
    assert (status["phase"], status["delivery"]["phase"]) == ("Confirmed", "Delivered")
    assert status["billing"]["anchor"] == make.now.isoformat().replace("+00:00", "Z")
    return applied


def _timer(world: Any) -> float | None:
    """When the rental's timer fires next, once the immediate passes (the texts' mark) have run."""
    for _ in range(5):
        delay = world.scheduler.delay(*RENTAL)
        if delay is None or delay >= 1.0:
            return delay
        world.scheduler.run(*RENTAL)
    raise AssertionError("the rental keeps asking to be looked at again at once")


def _next_period(world: Any, period: int) -> None:
    """The clock reaches the period's due time; the rental's timer fires; its Payment is charged."""
    assert _timer(world) is not None  # the rental asked to be looked at again
    world.clock.advance(PERIOD)
    _reconcile(world)  # as its timer would
    payments.reconcile(world.ctx, "shop", f"kim-p{period}")  # as the new Payment's watch event would


def test_a_whole_contract_of_three_periods_through_the_three_controllers(world: Any, make: Any) -> None:
    applied = _in_force(world, make, months=3)
    uid = applied["metadata"]["uid"]
    assert _timer(world) == PERIOD.total_seconds() + 0.5  # period 2's due time

    _next_period(world, 2)
    payment = world.kube.body("Payment", "kim-p2")
    assert payment["metadata"]["ownerReferences"] == [make.owner(applied)]
    assert (payment["spec"]["period"], payment["spec"]["amount"]) == (2, 30_000)
    assert world.kube.status("Rental", "kim")["billing"]["periodsPaid"] == 2
    _next_period(world, 3)
    billing = world.kube.status("Rental", "kim")["billing"]
    assert (billing["periodsPaid"], billing["paidAmount"]) == (3, 90_000)
    assert world.kube.status("Rental", "kim")["phase"] == "Confirmed"

    assert _timer(world) == PERIOD.total_seconds() + 0.5  # the term's end
    world.clock.advance(PERIOD)
    _reconcile(world)
    status = world.kube.status("Rental", "kim")
    assert status["phase"] == "Completed"
    assert world.conditions("Rental", "kim")["StockReserved"] == ("False", "Transferred")
    purifier = world.kube.status("Purifier", "aqua")
    assert (purifier["allocated"], purifier["transferred"], purifier["available"]) == (0, 1, 0)
    assert [c["idempotency_key"] for c in world.payments.charges] == [
        f"rental-{uid}-p{k}-a1" for k in (1, 2, 3)
    ]
    assert world.payments.refunds == []
    assert world.kube.status("Delivery", "kim")["phase"] == "Delivered"  # kept by the customer
    assert world.kube.body("Delivery", "kim")["spec"]["cancelled"] is False
    assert "OwnershipTransferred" in world.events.reasons("kim")
    phases = [entry["phase"] for entry in status["history"]]
    assert phases.count("Charged") == 2
    assert phases[-3:] == ["Charged", "TermEnding", "Completed"]
    assert world.sms.sent[-1]["key"] == f"sms-{uid}-{status['history'][-1]['seq']}"  # every entry texted


def test_a_declined_period_is_retried_by_the_rental_under_a_new_attempt(world: Any, make: Any) -> None:
    applied = _in_force(world, make, months=3)
    uid = applied["metadata"]["uid"]
    world.payments.answers = [make.charge("declined", "tx-d", reason="insufficient funds")]
    _next_period(world, 2)
    assert world.kube.status("Rental", "kim")["phase"] == "PastDue"
    assert world.conditions("Rental", "kim")["Paid"] == ("False", "ChargeDeclined")
    assert _timer(world) == 5.5  # the dunning schedule's first retry

    world.clock.advance(datetime.timedelta(seconds=5))
    _reconcile(world)
    assert world.kube.body("Payment", "kim-p2")["spec"]["attempt"] == 2
    payments.reconcile(world.ctx, "shop", "kim-p2")
    assert [c["idempotency_key"] for c in world.payments.charges][-2:] == [
        f"rental-{uid}-p2-a1",
        f"rental-{uid}-p2-a2",
    ]
    status = world.kube.status("Rental", "kim")
    assert (status["phase"], status["billing"]["periodsPaid"]) == ("Confirmed", 2)
    assert "pastDue" not in status["billing"]


def test_settled_payments_beyond_the_history_are_deleted(world: Any, make: Any) -> None:
    _in_force(world, make, months=3, payment_history=1)
    _next_period(world, 2)
    assert world.kube.body("Payment", "kim-p1") is None  # past the withdrawal period, beyond history 1
    assert ("delete", "Payment", "kim-p1") in world.kube.calls
    assert world.kube.body("Payment", "kim-p2") is not None
    assert world.kube.status("Rental", "kim")["billing"]["paidAmount"] == 60_000  # recorded before


def test_a_payment_is_deleted_only_if_it_is_the_rentals_own_by_uid(world: Any, make: Any) -> None:
    _in_force(world, make, months=3, payment_history=1)
    own = world.kube.body("Payment", "kim-p1")
    world.ctx.payments.observe(own)  # the store still holds the rental's own
    world.kube.remove("Payment", "kim-p1")
    stranger = world.add(
        {**own, "metadata": {**own["metadata"], "uid": "uid-stranger"}}
    )  # its name, a new uid
    _next_period(world, 2)
    assert ("delete", "Payment", "kim-p1") in world.kube.calls  # asked for, under the own's uid
    assert world.kube.body("Payment", "kim-p1")["metadata"]["uid"] == stranger["metadata"]["uid"]
    assert world.kube.status("Rental", "kim")["billing"]["periodsPaid"] == 2
