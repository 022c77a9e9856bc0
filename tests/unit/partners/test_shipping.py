"""shipping: the contract's requests and answers; what a 409 on cancel means."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rental_operator.partners import errors, shipping

SHIPPING = {"id": "shp_1", "trackingNumber": "RX123", "status": "shipping", "carrier": "reference-express"}


@pytest.fixture
def client(partner: Any, make_settings: Any) -> Iterator[shipping.ShippingClient]:
    settings = make_settings(partner.url, shipping_api_key="sk-1")
    with shipping.ShippingClient(settings, timeout_seconds=0.5) as built:
        yield built


def test_create_posts_the_contracts_body(client: shipping.ShippingClient, partner: Any) -> None:
    partner.default = partner.Reply(201, SHIPPING)
    shipment = client.create(
        reference="ns/rent-1",
        address="1 Sejong-daero, Seoul",
        item="AQ-100",
        idempotency_key="ns/rent-1/ship",
    )
    assert shipment == shipping.Shipment(
        id="shp_1", tracking_number="RX123", status="shipping", carrier="reference-express"
    )
    (request,) = partner.received
    assert (request.method, request.path) == ("POST", "/v1/shipments")
    assert request.json() == {"reference": "ns/rent-1", "address": "1 Sejong-daero, Seoul", "item": "AQ-100"}
    assert request.headers["idempotency-key"] == "ns/rent-1/ship"
    assert request.headers["authorization"] == "Bearer sk-1"


@pytest.mark.parametrize("status", ["shipping", "delivered", "cancelled", "returning", "returned"])
def test_get_knows_every_status(client: shipping.ShippingClient, partner: Any, status: str) -> None:
    partner.default = partner.Reply(200, {**SHIPPING, "status": status})
    assert client.get("shp_1").status == status
    assert partner.received[0].path == "/v1/shipments/shp_1"


@pytest.mark.parametrize(
    "body",
    [
        {**SHIPPING, "status": "lost"},
        {"id": "shp_1", "status": "shipping"},
        {**SHIPPING, "trackingNumber": ""},
    ],
)
def test_an_answer_off_contract_is_a_protocol_error(
    client: shipping.ShippingClient, partner: Any, body: dict[str, object]
) -> None:
    partner.default = partner.Reply(200, body)
    with pytest.raises(errors.PartnerProtocolError):
        client.get("shp_1")


def test_cancel_and_return_post_empty_bodies_to_their_actions(
    client: shipping.ShippingClient, partner: Any
) -> None:
    partner.script(
        partner.Reply(200, {**SHIPPING, "status": "cancelled"}),
        partner.Reply(200, {**SHIPPING, "status": "returning"}),
    )
    assert client.cancel("shp_1", idempotency_key="k/cancel").status == "cancelled"
    assert client.return_("shp_1", idempotency_key="k/return").status == "returning"
    assert [(r.method, r.path, r.json(), r.headers["idempotency-key"]) for r in partner.received] == [
        ("POST", "/v1/shipments/shp_1/cancel", {}, "k/cancel"),
        ("POST", "/v1/shipments/shp_1/return", {}, "k/return"),
    ]


def test_cancelling_a_delivered_parcel_is_a_state_conflict(
    client: shipping.ShippingClient, partner: Any
) -> None:
    partner.default = partner.Reply(
        409, {"error": "a delivered shipment cannot be cancelled; request a return"}
    )
    with pytest.raises(errors.StateConflict) as caught:
        client.cancel("shp_1", idempotency_key="k/cancel")
    assert "request a return" in caught.value.error


def test_faults_are_raised_as_unavailable(client: shipping.ShippingClient, partner: Any) -> None:
    partner.default = partner.Reply(502, "bad gateway")
    with pytest.raises(errors.PartnerUnavailable) as caught:
        client.create(reference="r", address="a", item="i", idempotency_key="k")
    assert caught.value.outcome_unknown and caught.value.partner == "shipping"


def test_empty_arguments_are_refused_before_any_request(
    client: shipping.ShippingClient, partner: Any
) -> None:
    with pytest.raises(ValueError):
        client.create(reference="r", address="", item="i", idempotency_key="k")
    with pytest.raises(ValueError):
        client.cancel("", idempotency_key="k")
    with pytest.raises(ValueError):
        client.return_("shp_1", idempotency_key="")
    assert partner.received == []
