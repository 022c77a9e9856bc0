"""reconcilers.deliveries: which call a Delivery needs next, and its status from the shipping system."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from rental_operator.api import delivery as api_delivery
from rental_operator.reconcilers import deliveries

NOW = datetime.datetime(2025, 6, 1, 9, 0, tzinfo=datetime.UTC)
LATER = NOW + datetime.timedelta(hours=3)

Call = deliveries.Call
Phase = api_delivery.DeliveryPhase


def _delivery(
    phase: str | None = None,
    *,
    shipment: str | None = None,
    cancelled: bool = False,
    tracking: str | None = None,
    generation: int = 1,
    **status: Any,
) -> api_delivery.Delivery:
    body_status: dict[str, Any] = dict(status)
    for key, value in (("phase", phase), ("shipmentId", shipment), ("trackingNumber", tracking)):
        if value is not None:
            body_status[key] = value
    return api_delivery.Delivery.model_validate(
        {
            "metadata": {"name": "r1", "namespace": "shop", "uid": "d-uid", "generation": generation},
            "spec": {
                "rental": "r1",
                "purifier": "aquapure-300",
                "address": "Seoul",
                "customerId": "cust-7",
                "cancelled": cancelled,
            },
            "status": body_status,
        }
    )


def _conditions(status: api_delivery.DeliveryStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status.value, c.reason) for c in status.conditions}


def _with_status(
    delivery: api_delivery.Delivery, status: api_delivery.DeliveryStatus
) -> api_delivery.Delivery:
    return delivery.model_copy(update={"status": status})


# --- next_call ------------------------------------------------------------------------------------------
# (phase, shipment recorded, stop requested) -> next call
NEXT_CALLS: dict[tuple[str | None, bool, bool], Call | None] = {
    # never created (or its creation never recorded): create, under the same key, even if stopping
    (None, False, False): Call.CREATE,
    (None, False, True): Call.CREATE,
    ("Pending", False, False): Call.CREATE,
    ("Pending", False, True): Call.CREATE,
    ("Shipping", False, False): Call.CREATE,
    ("Shipping", False, True): Call.CREATE,
    ("Delivered", False, False): Call.CREATE,
    ("Delivered", False, True): Call.CREATE,
    ("Returning", False, False): Call.CREATE,
    ("Returning", False, True): Call.CREATE,
    # done for good, recorded or not
    ("Cancelled", False, False): None,
    ("Cancelled", False, True): None,
    ("Returned", False, False): None,
    ("Returned", False, True): None,
    ("Cancelled", True, False): None,
    ("Cancelled", True, True): None,
    ("Returned", True, False): None,
    ("Returned", True, True): None,
    # recorded shipments
    (None, True, False): None,
    (None, True, True): None,
    ("Pending", True, False): None,
    ("Pending", True, True): None,
    ("Shipping", True, False): Call.POLL,
    ("Shipping", True, True): Call.CANCEL,
    ("Delivered", True, False): None,
    ("Delivered", True, True): Call.RETURN,
    ("Returning", True, False): Call.POLL,
    ("Returning", True, True): Call.POLL,
}


def test_the_table_covers_every_combination() -> None:
    phases = {None, *(p.value for p in Phase)}
    assert set(NEXT_CALLS) == {(p, s, c) for p in phases for s in (False, True) for c in (False, True)}


@pytest.mark.parametrize(("phase", "recorded", "stopping"), list(NEXT_CALLS))
def test_next_call(phase: str | None, recorded: bool, stopping: bool) -> None:
    delivery = _delivery(phase, shipment="ship-1" if recorded else None, cancelled=stopping)
    assert deliveries.next_call(delivery) == NEXT_CALLS[(phase, recorded, stopping)]


def test_idempotency_key_names_the_delivery_and_the_call() -> None:
    delivery = _delivery()
    assert deliveries.idempotency_key(delivery, Call.CREATE) == "delivery-d-uid-create"
    assert deliveries.idempotency_key(delivery, Call.CANCEL) == "delivery-d-uid-cancel"
    assert deliveries.idempotency_key(delivery, Call.RETURN) == "delivery-d-uid-return"


# --- observed --------------------------------------------------------------------------------------------
# partner status -> (phase, Delivered condition, Ready condition, reason of both)
OBSERVED = {
    "shipping": (Phase.SHIPPING, "False", "False", "Shipping"),
    "delivered": (Phase.DELIVERED, "True", "True", "Delivered"),
    "cancelled": (Phase.CANCELLED, "False", "False", "ShipmentCancelled"),
    "returning": (Phase.RETURNING, "True", "False", "Returning"),
    "returned": (Phase.RETURNED, "False", "False", "Returned"),
}


@pytest.mark.parametrize("partner_status", list(OBSERVED))
def test_every_partner_status_maps_to_a_phase(partner_status: str) -> None:
    phase, delivered, ready, reason = OBSERVED[partner_status]
    status = deliveries.observed(
        _delivery("Pending", last_error="earlier failure", generation=3),
        shipment_id="ship-1",
        tracking_number="TRK-1",
        partner_status=partner_status,
        now=NOW,
    )
    assert status.phase is phase
    assert status.shipment_id == "ship-1"
    assert status.tracking_number == "TRK-1"
    assert status.last_error is None
    assert _conditions(status) == {"Delivered": (delivered, reason), "Ready": (ready, reason)}
    assert all(c.observed_generation == 3 for c in status.conditions)
    assert all("ship-1" in c.message and partner_status in c.message for c in status.conditions)


def test_the_mapping_covers_every_phase_but_pending() -> None:
    assert {phase for phase, *_ in OBSERVED.values()} == set(Phase) - {Phase.PENDING}


@pytest.mark.parametrize("partner_status", ["lost", "Shipping", "", "pending"])
def test_unknown_status_raises(partner_status: str) -> None:
    with pytest.raises(ValueError, match="unknown shipment status") as caught:
        deliveries.observed(
            _delivery(), shipment_id="ship-1", tracking_number=None, partner_status=partner_status, now=NOW
        )
    assert repr(partner_status) in str(caught.value)


def test_shipped_and_delivered_times_are_set_once() -> None:
    delivery = _delivery()
    shipping = deliveries.observed(
        delivery, shipment_id="s", tracking_number="T", partner_status="shipping", now=NOW
    )
    assert (shipping.shipped_at, shipping.delivered_at) == (NOW, None)
    delivery = _with_status(delivery, shipping)

    shipping_again = deliveries.observed(
        delivery, shipment_id="s", tracking_number="T", partner_status="shipping", now=LATER
    )
    assert shipping_again.shipped_at == NOW

    delivered = deliveries.observed(
        delivery, shipment_id="s", tracking_number="T", partner_status="delivered", now=LATER
    )
    assert (delivered.shipped_at, delivered.delivered_at) == (NOW, LATER)
    delivery = _with_status(delivery, delivered)

    much_later = LATER + datetime.timedelta(days=1)
    for partner_status in ("delivered", "returning", "returned"):
        again = deliveries.observed(
            delivery, shipment_id="s", tracking_number="T", partner_status=partner_status, now=much_later
        )
        assert (again.shipped_at, again.delivered_at) == (NOW, LATER)


def test_delivered_first_sets_no_shipped_time() -> None:
    status = deliveries.observed(
        _delivery(), shipment_id="s", tracking_number="T", partner_status="delivered", now=NOW
    )
    assert status.shipped_at is None
    assert status.delivered_at == NOW


def test_tracking_number_is_kept_when_the_partner_omits_it() -> None:
    delivery = _delivery("Shipping", shipment="s", tracking="TRK-7")
    status = deliveries.observed(
        delivery, shipment_id="s", tracking_number=None, partner_status="delivered", now=NOW
    )
    assert status.tracking_number == "TRK-7"
    newer = deliveries.observed(
        delivery, shipment_id="s", tracking_number="TRK-8", partner_status="delivered", now=NOW
    )
    assert newer.tracking_number == "TRK-8"


def test_condition_time_moves_only_on_a_flip() -> None:
    delivery = _delivery()
    shipping = deliveries.observed(
        delivery, shipment_id="s", tracking_number="T", partner_status="shipping", now=NOW
    )
    delivery = _with_status(delivery, shipping)
    delivered = deliveries.observed(
        delivery, shipment_id="s", tracking_number="T", partner_status="delivered", now=LATER
    )
    delivery = _with_status(delivery, delivered)
    returning = deliveries.observed(
        delivery,
        shipment_id="s",
        tracking_number="T",
        partner_status="returning",
        now=LATER + datetime.timedelta(minutes=1),
    )
    times = {c.type: c.last_transition_time for c in returning.conditions}
    assert times["Delivered"] == LATER  # True -> True: kept
    assert times["Ready"] == LATER + datetime.timedelta(minutes=1)  # True -> False: moved


def test_observed_leaves_the_input_alone() -> None:
    delivery = _delivery("Shipping", shipment="s", tracking="T")
    before = delivery.model_copy(deep=True)
    deliveries.observed(delivery, shipment_id="s", tracking_number="U", partner_status="delivered", now=NOW)
    assert delivery == before


# --- failed ---------------------------------------------------------------------------------------------
def test_failed_records_the_error_and_keeps_the_phase() -> None:
    delivery = _delivery("Shipping", shipment="s", tracking="T")
    status = deliveries.failed(delivery, "503 from shipping")
    assert status.last_error == "503 from shipping"
    assert status.phase is Phase.SHIPPING
    assert status.shipment_id == "s"
    assert status.conditions == delivery.status.conditions


def test_failed_before_anything_is_pending() -> None:
    status = deliveries.failed(_delivery(), "connection refused")
    assert status.phase is Phase.PENDING
    assert deliveries.next_call(_with_status(_delivery(), status)) is Call.CREATE


# --- reported and call_failed: the status and when to call again -----------------------------------------
POLL = 5.0


def _reported(delivery: api_delivery.Delivery, call: Call, partner_status: str) -> deliveries.Outcome:
    return deliveries.reported(
        delivery,
        call,
        shipment_id="s",
        tracking_number="T",
        carrier="CJ",
        partner_status=partner_status,
        now=NOW,
        poll_seconds=POLL,
    )


@pytest.mark.parametrize(
    ("call", "cancelled", "partner_status", "retry"),
    [
        (Call.CREATE, False, "shipping", POLL),  # on its way: follow it
        (Call.CREATE, False, "delivered", None),  # at rest
        (Call.POLL, False, "shipping", POLL),
        (Call.POLL, True, "returning", POLL),
        (Call.CREATE, True, "shipping", None),  # stopping: cancel at once, not after a poll
        (Call.CANCEL, True, "delivered", None),  # delivered meanwhile: return at once
        (Call.RETURN, True, "returning", None),  # acted on as soon as seen, then polled
        (Call.CANCEL, True, "cancelled", None),
    ],
)
def test_when_to_call_again(call: Call, cancelled: bool, partner_status: str, retry: float | None) -> None:
    outcome = _reported(_delivery("Shipping", shipment="s", cancelled=cancelled), call, partner_status)
    assert outcome.retry_after == retry


def test_reported_records_the_carrier_only_when_named() -> None:
    assert _reported(_delivery(), Call.CREATE, "shipping").status.carrier == "CJ"
    kept = deliveries.reported(
        _delivery("Shipping", shipment="s", carrier="Hanjin"),
        Call.POLL,
        shipment_id="s",
        tracking_number=None,
        carrier=None,
        partner_status="shipping",
        now=NOW,
        poll_seconds=POLL,
    )
    assert kept.status.carrier == "Hanjin"


def test_every_failed_call_is_retried_at_the_polling_interval() -> None:
    outcome = deliveries.call_failed(_delivery("Shipping", shipment="s"), "503", poll_seconds=POLL)
    assert (outcome.status.last_error, outcome.status.phase, outcome.retry_after) == (
        "503",
        Phase.SHIPPING,
        POLL,
    )
