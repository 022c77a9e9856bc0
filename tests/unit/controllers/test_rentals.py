"""controllers.rentals: a Rental's pass executes the saga's plan against the API, writes its status
once, and texts the customer; its Payment and Delivery are its own only if they say so (finding 6)."""

from __future__ import annotations

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
    payment = world.kube.body("Payment", "kim")
    assert payment["metadata"]["ownerReferences"] == [make.owner(applied)]
    assert payment["spec"]["idempotencyKey"] == f"rental-{applied['metadata']['uid']}"
    assert payment["spec"]["amount"] == 30_000 * 12
    assert world.events.reasons("kim") == ["PaymentRequested", "AwaitingPayment"]
    # "application received", then "reserved; taking payment"
    assert [m["key"] for m in world.sms.sent] == [f"sms-{applied['metadata']['uid']}-{n}" for n in (1, 2)]


def test_a_whole_rental_through_the_three_controllers(world: Any, make: Any) -> None:
    applied = _applied(world, make)
    _reconcile(world)
    payments.reconcile(world.ctx, "shop", "kim")  # charges, then reconciles the rental at once
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
    assert world.kube.body("Payment", "kim") is None


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
    payments.reconcile(world.ctx, "shop", "kim")
    deliveries.reconcile(world.ctx, "shop", "kim")
    _cancel(world)
    _reconcile(world)
    assert world.kube.body("Payment", "kim")["spec"]["refund"] is True
    assert world.kube.body("Delivery", "kim")["spec"]["cancelled"] is True
    deliveries.reconcile(world.ctx, "shop", "kim")  # as the Delivery's watch event would
    payments.reconcile(world.ctx, "shop", "kim")
    assert world.kube.status("Rental", "kim")["phase"] == "Cancelled"
    assert world.kube.status("Purifier", "aqua")["allocated"] == 0
    assert len(world.payments.refunds) == 1


def test_a_flag_is_never_set_on_a_stranger_that_took_the_name_meanwhile(world: Any, make: Any) -> None:
    _applied(world, make)
    _reconcile(world)
    payment = world.kube.body("Payment", "kim")
    world.ctx.payments.observe(payment)  # the store still holds the rental's own
    world.kube.delete("Payment", "kim")
    world.add(make.payment(owners=payment["metadata"]["ownerReferences"]))  # same name, a new uid
    _cancel(world)
    _reconcile(world)
    assert world.kube.body("Payment", "kim")["spec"]["refund"] is False
    assert world.scheduler.delay(*RENTAL) == 2.0  # the pass failed; it is decided again on fresh facts


# --- finding 6: a stranger under the rental's Payment or Delivery name -------------------------------------
APPROVED = {"phase": "Approved", "transactionId": "tx-stale", "attempts": 1}


def _assert_blocked_by_a_stranger_payment(world: Any, *, held: int) -> None:
    status = world.kube.status("Rental", "kim")
    assert status.get("phase") != "Confirmed"
    assert "payment" not in status
    assert world.conditions("Rental", "kim")["Paid"] == ("False", "PaymentMismatch")
    assert world.conditions("Rental", "kim")["Ready"] == ("False", "PaymentMismatch")
    assert "Payment 'kim' is not this rental's" in status["message"]
    assert world.kube.body("Delivery", "kim") is None
    assert world.kube.status("Purifier", "aqua").get("allocated", 0) == held
    assert world.events.reasons("kim").count("PaymentMismatch") == 1
    assert world.scheduler.delay(*RENTAL) == decisions.MISMATCH_RECHECK_SECONDS + 0.5


def test_an_approved_payment_made_by_hand_does_not_confirm_a_new_rental(world: Any, make: Any) -> None:
    world.add(make.payment(status=APPROVED))
    world.ctx.payments.observe(world.kube.body("Payment", "kim"))  # seen by the watch
    _applied(world, make)
    _reconcile(world)
    _assert_blocked_by_a_stranger_payment(world, held=0)
    assert "no Rental owns it" in world.kube.status("Rental", "kim")["message"]

    world.scheduler.run(*RENTAL)  # looking again reports nothing new
    assert world.events.reasons("kim").count("PaymentMismatch") == 1

    stranger = world.kube.body("Payment", "kim")
    world.kube.delete("Payment", "kim")
    world.ctx.payments.forget(stranger)  # the watch's DELETED event
    world.scheduler.run(*RENTAL)
    assert world.kube.status("Rental", "kim")["phase"] == "AwaitingPayment"
    assert world.kube.body("Payment", "kim")["metadata"]["ownerReferences"][0]["name"] == "kim"


def test_a_payment_left_by_a_deleted_rental_of_the_same_name_is_not_this_ones(world: Any, make: Any) -> None:
    old = {"metadata": {"name": "kim", "uid": "uid-deleted"}}
    world.add(make.payment(owners=[make.owner(old)], key="rental-uid-deleted", status=APPROVED))
    world.ctx.payments.observe(world.kube.body("Payment", "kim"))
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
    payments.reconcile(world.ctx, "shop", "kim")

    status = world.kube.status("Rental", "kim")
    assert status["phase"] == "Confirmed"
    assert "delivery" not in status
    assert world.conditions("Rental", "kim")["DeliveryStarted"] == ("False", "DeliveryMismatch")
    assert "Delivery 'kim' is not this rental's" in status["message"]
    assert "DeliveryMismatch" in world.events.reasons("kim")
    assert world.shipping.shipments == {}
    assert world.kube.body("Delivery", "kim")["metadata"]["ownerReferences"] == []
