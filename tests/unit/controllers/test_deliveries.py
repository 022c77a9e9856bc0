"""controllers.deliveries: the shipping calls a Delivery needs, followed to delivered or back."""

from __future__ import annotations

from typing import Any

from rental_operator.controllers import deliveries
from rental_operator.partners import errors

POLL = 7.0  # the world's RENTAL_SHIPPING_POLL_SECONDS
KEY = ("Delivery", "shop", "kim")


def _reconcile(world: Any) -> None:
    deliveries.reconcile(world.ctx, "shop", "kim")


def test_a_new_delivery_is_shipped_once_and_followed(world: Any, make: Any) -> None:
    body = world.add(make.delivery())
    _reconcile(world)
    status = world.kube.status("Delivery", "kim")
    assert (status["phase"], status["shipmentId"], status["trackingNumber"], status["carrier"]) == (
        "Shipping",
        "ship-1",
        "TRK-1",
        "CJ",
    )
    assert world.shipping.by_key == {f"delivery-{body['metadata']['uid']}-create": "ship-1"}
    assert world.shipping.shipments["ship-1"]["reference"] == "shop/kim"
    (event,) = world.events.recorded
    assert (event.reason, event.message) == ("Shipping", "shipment ship-1 is shipping")
    assert world.scheduler.delay(*KEY) == POLL

    world.shipping.move("ship-1", "delivered")
    world.scheduler.run(*KEY)
    assert world.kube.status("Delivery", "kim")["phase"] == "Delivered"
    assert world.conditions("Delivery", "kim")["Delivered"] == ("True", "Delivered")
    assert world.scheduler.waiting == {}  # at rest: nothing more to poll


def test_a_shipment_still_on_its_way_writes_nothing_new(world: Any, make: Any) -> None:
    world.add(make.delivery())
    _reconcile(world)
    writes = world.kube.count("replace_status", "Delivery")
    world.scheduler.run(*KEY)
    assert world.kube.count("replace_status", "Delivery") == writes
    assert world.scheduler.delay(*KEY) == POLL


def test_a_failed_call_records_the_error_and_is_retried_at_the_polling_interval(
    world: Any, make: Any
) -> None:
    world.shipping.failures = [
        errors.PartnerUnavailable("503", partner="shipping", kind="server_error", outcome_unknown=True)
    ]
    world.add(make.delivery())
    _reconcile(world)
    status = world.kube.status("Delivery", "kim")
    assert (status["phase"], status["lastError"]) == ("Pending", "503")
    # the first status a Delivery gets (as it stands, the Event reads "shipment None is pending")
    assert world.events.reasons("kim") == ["Pending"]
    assert world.scheduler.delay(*KEY) == POLL
    world.scheduler.run(*KEY)
    assert world.kube.status("Delivery", "kim")["phase"] == "Shipping"
    assert len(world.shipping.shipments) == 1  # the same key: one shipment


def test_a_stop_request_cancels_a_shipment_on_its_way(world: Any, make: Any) -> None:
    world.add(make.delivery(cancelled=True, status={"phase": "Shipping", "shipmentId": "ship-1"}))
    world.shipping.shipments["ship-1"] = {"id": "ship-1", "trackingNumber": "T", "status": "shipping"}
    _reconcile(world)
    assert world.kube.status("Delivery", "kim")["phase"] == "Cancelled"
    assert [r[0] for r in world.shipping.requests] == ["cancel"]
    assert world.scheduler.waiting == {}


def test_a_stop_request_after_delivery_meanwhile_returns_the_unit(world: Any, make: Any) -> None:
    """The cancel meets "delivered" (409): the shipment is read, and the return follows in the same pass."""
    world.add(make.delivery(cancelled=True, status={"phase": "Shipping", "shipmentId": "ship-1"}))
    world.shipping.shipments["ship-1"] = {"id": "ship-1", "trackingNumber": "T", "status": "delivered"}
    _reconcile(world)
    # the return's answer is acted on at once: one look, then polling
    assert [r[0] for r in world.shipping.requests] == ["cancel", "get", "return", "get"]
    assert world.kube.status("Delivery", "kim")["phase"] == "Returning"
    assert world.scheduler.delay(*KEY) == POLL
    world.shipping.move("ship-1", "returned")
    world.scheduler.run(*KEY)
    assert world.kube.status("Delivery", "kim")["phase"] == "Returned"


def test_a_failed_status_write_is_retried_at_the_polling_interval(world: Any, make: Any) -> None:
    world.add(make.delivery(status={"phase": "Shipping", "shipmentId": "ship-1"}))
    world.shipping.shipments["ship-1"] = {"id": "ship-1", "trackingNumber": "T", "status": "shipping"}
    world.kube.fail("replace_status", RuntimeError("API server went away"))
    world.shipping.move("ship-1", "delivered")
    _reconcile(world)
    assert world.kube.status("Delivery", "kim")["phase"] == "Shipping"
    assert world.scheduler.delay(*KEY) == POLL
    world.scheduler.run(*KEY)
    assert world.kube.status("Delivery", "kim")["phase"] == "Delivered"
