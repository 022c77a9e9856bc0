"""The whole gateway without a socket: routing, checks in order, validation, declines, admin."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from rental_gateway import app, declines, faults, ledger, wire

PAYMENT = {"amount": 120_000, "currency": "KRW", "customerId": "c-1", "reference": "rent-1"}


@pytest.fixture
def store() -> Iterator[ledger.Ledger]:
    opened = ledger.Ledger(":memory:")
    yield opened
    opened.close()


@pytest.fixture
def gateway(store: ledger.Ledger) -> app.Gateway:
    return app.Gateway(store, decline_rule=declines.DeclineRule(amount_above=1_000_000), sleep=lambda _: None)


def call(
    gateway: app.Gateway,
    method: str,
    path: str,
    body: object = None,
    *,
    key: str | None = "key-1",
    headers: dict[str, str] | None = None,
    query: dict[str, list[str]] | None = None,
) -> tuple[int, dict[str, object]]:
    all_headers = {name.lower(): value for name, value in (headers or {}).items()}
    if key is not None:
        all_headers["idempotency-key"] = key
    raw = b"" if body is None else json.dumps(body).encode()
    result = gateway.handle(wire.Request(method, path, query or {}, all_headers, raw))
    assert isinstance(result, wire.Response)
    payload = json.loads(result.body)
    assert isinstance(payload, dict)
    return result.status, payload


def test_an_approved_payment(gateway: app.Gateway) -> None:
    status, payment = call(gateway, "POST", "/v1/payments", PAYMENT)
    assert status == 201
    assert {key: payment[key] for key in ("status", "amount", "currency")} == {
        "status": "approved",
        "amount": 120_000,
        "currency": "KRW",
    }
    assert call(gateway, "GET", f"/v1/payments/{payment['id']}")[1] == payment


@pytest.mark.parametrize(
    ("changes", "reason"),
    [({"customerId": "decline-kim"}, "card_declined"), ({"amount": 1_000_001}, "amount_limit_exceeded")],
)
def test_declines_follow_the_documented_rule(
    gateway: app.Gateway, changes: dict[str, object], reason: str
) -> None:
    status, payment = call(gateway, "POST", "/v1/payments", PAYMENT | changes)
    assert (status, payment["status"], payment["reason"]) == (201, "declined", reason)
    status, error = call(gateway, "POST", f"/v1/payments/{payment['id']}/refund", {}, key="refund-1")
    assert status == 409 and "declined" in str(error["error"])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": 12.5}, "amount"),
        ({"amount": "100"}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": 2**63}, "amount"),
        ({"currency": "krw"}, "currency"),
        ({"currency": "KRWW"}, "currency"),
        ({"currency": None}, "currency"),
        ({"customerId": ""}, "customerId"),
        ({"customerId": 7}, "customerId"),
        ({"reference": "  "}, "reference"),
    ],
)
def test_a_bad_payment_is_refused_naming_the_field(
    gateway: app.Gateway, store: ledger.Ledger, changes: dict[str, object], field: str
) -> None:
    status, error = call(gateway, "POST", "/v1/payments", PAYMENT | changes)
    assert status == 400
    assert str(error["error"]).startswith(f"{field} must")
    assert store.counts()["payments"] == 0


def test_every_missing_field_is_named_at_once(gateway: app.Gateway) -> None:
    status, error = call(gateway, "POST", "/v1/payments", {})
    assert status == 400
    for field in ("amount", "currency", "customerId", "reference"):
        assert f"{field} must" in str(error["error"])


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object"), (b'{"amount": NaN}', "not valid JSON")],
)
def test_a_body_that_is_not_a_json_object_is_refused(gateway: app.Gateway, raw: bytes, message: str) -> None:
    request = wire.Request("POST", "/v1/payments", {}, {"idempotency-key": "k"}, raw)
    result = gateway.handle(request)
    assert isinstance(result, wire.Response)
    assert result.status == 400 and message in json.loads(result.body)["error"]


def test_every_post_needs_an_idempotency_key(gateway: app.Gateway) -> None:
    for path, body in (("/v1/payments", PAYMENT), ("/v1/shipments", {}), ("/v1/messages", {})):
        status, error = call(gateway, "POST", path, body, key=None)
        assert status == 400 and "Idempotency-Key" in str(error["error"])


def test_a_replay_is_the_first_answer_even_after_the_payment_changed(gateway: app.Gateway) -> None:
    _, first = call(gateway, "POST", "/v1/payments", PAYMENT)
    call(gateway, "POST", f"/v1/payments/{first['id']}/refund", {}, key="refund-1")
    assert call(gateway, "POST", "/v1/payments", PAYMENT) == (201, first)
    assert call(gateway, "POST", "/v1/payments", PAYMENT | {"amount": 1})[0] == 409
    assert call(gateway, "POST", f"/v1/payments/{first['id']}/refund", {}, key="key-1")[0] == 409


def test_shipment_lifecycle_through_the_api(gateway: app.Gateway) -> None:
    status, shipment = call(
        gateway, "POST", "/v1/shipments", {"reference": "r", "address": "Seoul", "item": "AQ"}
    )
    assert status == 201 and shipment["status"] == "shipping" and shipment["trackingNumber"]
    path = f"/v1/shipments/{shipment['id']}"
    assert call(gateway, "POST", f"{path}/return", {}, key="ret-1")[0] == 409
    assert (
        call(gateway, "POST", f"/admin/shipments/{shipment['id']}/deliver", key=None)[1]["status"]
        == "delivered"
    )
    assert call(gateway, "POST", f"{path}/cancel", {}, key="cancel-1")[0] == 409
    assert call(gateway, "POST", f"{path}/return", {}, key="ret-2")[1]["status"] == "returning"
    assert (
        call(gateway, "POST", f"/admin/shipments/{shipment['id']}/deliver", key=None)[1]["status"]
        == "returned"
    )
    assert call(gateway, "GET", path)[1]["status"] == "returned"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to": "010-1234-5678", "text": "hi", "reference": "r"}, "to"),
        ({"to": "+0123", "text": "hi", "reference": "r"}, "to"),
        ({"to": "+8210" + "1" * 20, "text": "hi", "reference": "r"}, "to"),
        ({"to": "+821012345678", "text": "", "reference": "r"}, "text"),
        ({"to": "+821012345678", "text": "hi"}, "reference"),
    ],
)
def test_a_bad_message_is_refused_naming_the_field(
    gateway: app.Gateway, body: dict[str, object], field: str
) -> None:
    status, error = call(gateway, "POST", "/v1/messages", body)
    assert status == 400 and str(error["error"]).startswith(f"{field} must")


def test_a_message_is_accepted(gateway: app.Gateway, store: ledger.Ledger) -> None:
    status, message = call(
        gateway, "POST", "/v1/messages", {"to": "+821012345678", "text": "hi", "reference": "r"}
    )
    assert status == 202 and str(message["id"]).startswith("msg_")
    assert store.counts()["messages"] == 1


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/payments/pay_nope", 404),
        ("POST", "/v1/payments/pay_nope/refund", 404),
        ("GET", "/v1/shipments/shp_nope", 404),
        ("POST", "/v1/shipments/shp_nope/cancel", 404),
        ("POST", "/v1/shipments/shp_nope/return", 404),
        ("POST", "/admin/shipments/shp_nope/deliver", 404),
        ("GET", "/v2/payments", 404),
        ("DELETE", "/v1/payments/pay_1", 405),
        ("GET", "/v1/messages", 405),
    ],
)
def test_unknown_ids_and_routes(gateway: app.Gateway, method: str, path: str, status: int) -> None:
    answer, error = call(gateway, method, path, {})
    assert answer == status and error["error"]


def test_the_api_key_guards_everything_but_healthz(store: ledger.Ledger) -> None:
    gateway = app.Gateway(store, api_key="s3cret")
    assert call(gateway, "POST", "/v1/payments", PAYMENT)[0] == 401
    assert call(gateway, "POST", "/v1/payments", PAYMENT, headers={"Authorization": "Bearer wrong"})[0] == 401
    assert call(gateway, "POST", "/v1/payments", PAYMENT, headers={"Authorization": "Basic s3cret"})[0] == 401
    assert call(gateway, "GET", "/admin/ledger")[0] == 401
    assert call(gateway, "GET", "/healthz")[0] == 200
    assert (
        call(gateway, "POST", "/v1/payments", PAYMENT, headers={"Authorization": "Bearer s3cret"})[0] == 201
    )
    assert store.counts()["payments"] == 1


def test_an_injected_failure_has_no_effect_and_the_key_stays_usable(
    gateway: app.Gateway, store: ledger.Ledger
) -> None:
    assert call(gateway, "PUT", "/admin/faults", {"errorRate": 1.0}, key=None)[0] == 200
    status, error = call(gateway, "POST", "/v1/payments", PAYMENT)
    assert status == 503 and "injected" in str(error["error"])
    assert store.counts() == {"payments": 0, "shipments": 0, "messages": 0, "idempotency": 0}
    assert call(gateway, "GET", "/admin/ledger", key=None)[0] == 200  # admin is never faulted
    call(gateway, "PUT", "/admin/faults", {"errorRate": 0}, key=None)
    assert call(gateway, "POST", "/v1/payments", PAYMENT)[0] == 201


def test_a_drop_outage_answers_nothing(gateway: app.Gateway) -> None:
    gateway.faults.replace(faults.FaultSettings(outage=faults.Outage.DROP))
    result = gateway.handle(wire.Request("GET", "/v1/payments/x"))
    assert isinstance(result, wire.Drop)
    assert gateway.stats.count("GET /v1/payments/{id}", "dropped") == 1


def test_latency_is_slept_before_the_effect(store: ledger.Ledger) -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        assert store.counts()["payments"] == 0
        slept.append(seconds)

    gateway = app.Gateway(store, fault_settings=faults.FaultSettings(latency_ms=40), sleep=sleep)
    assert call(gateway, "POST", "/v1/payments", PAYMENT)[0] == 201
    assert slept == [0.04]


def test_stats_count_by_route_template_and_outcome(gateway: app.Gateway) -> None:
    _, payment = call(gateway, "POST", "/v1/payments", PAYMENT)
    call(gateway, "POST", "/v1/payments", PAYMENT)
    call(gateway, "GET", f"/v1/payments/{payment['id']}")
    call(gateway, "GET", "/nowhere")
    _, snapshot = call(gateway, "GET", "/admin/stats")
    routes = snapshot["routes"]
    assert isinstance(routes, dict)
    assert routes["POST /v1/payments"] == {"201": 2}
    assert routes["GET /v1/payments/{id}"] == {"200": 1}
    assert routes["unmatched"] == {"404": 1}
    assert snapshot["partners"] == {"payments": 3}
    assert snapshot["ledger"] == {"payments": 1, "shipments": 0, "messages": 0, "idempotency": 1}


def test_admin_faults_reject_bad_fields(gateway: app.Gateway) -> None:
    status, error = call(gateway, "PUT", "/admin/faults", {"errorRate": 3}, key=None)
    assert status == 400 and "errorRate" in str(error["error"])
    assert call(gateway, "GET", "/admin/faults")[1]["errorRate"] == 0.0


def test_admin_ledger_filters(gateway: app.Gateway) -> None:
    call(gateway, "POST", "/v1/payments", PAYMENT)
    call(gateway, "POST", "/v1/payments", PAYMENT | {"reference": "rent-2"}, key="key-2")
    _, listing = call(gateway, "GET", "/admin/ledger", query={"reference": ["rent-2"]})
    payments = listing["payments"]
    assert isinstance(payments, list) and [row["reference"] for row in payments] == ["rent-2"]
    assert call(gateway, "GET", "/admin/ledger", query={"colour": ["blue"]})[0] == 400
    assert call(gateway, "GET", "/admin/ledger", query={"reference": ["a", "b"]})[0] == 400


def test_reset_clears_the_ledger_counters_and_faults(store: ledger.Ledger) -> None:
    started = faults.FaultSettings(latency_ms=5)
    gateway = app.Gateway(store, fault_settings=started, sleep=lambda _: None)
    call(gateway, "POST", "/v1/payments", PAYMENT)
    call(gateway, "PUT", "/admin/faults", {"outage": "drop"}, key=None)
    status, answer = call(gateway, "POST", "/admin/reset", key=None)
    assert status == 200 and answer["faults"] == started.to_json()
    assert gateway.faults.settings == started
    assert store.counts()["payments"] == 0
    assert gateway.stats.snapshot()["routes"] == {"POST /admin/reset": {"200": 1}}  # counted after the reset
    assert call(gateway, "POST", "/v1/payments", PAYMENT)[0] == 201  # the old key is forgotten too


def test_stats_count_every_injected_fault_by_kind(store: ledger.Ledger) -> None:
    settings = faults.FaultSettings(latency_ms=1, spike_probability=1.0, spike_ms=5, error_rate=1.0)
    gateway = app.Gateway(store, fault_settings=settings, sleep=lambda _: None)
    assert call(gateway, "POST", "/v1/payments", PAYMENT)[0] == 503
    call(gateway, "PUT", "/admin/faults", {"outage": "unavailable"}, key=None)
    call(gateway, "GET", "/v1/payments/x")
    call(gateway, "PUT", "/admin/faults", {"outage": "drop"}, key=None)
    gateway.handle(wire.Request("GET", "/v1/payments/x"))
    call(gateway, "GET", "/admin/stats", key=None)  # admin requests are never faulted, nor counted here
    assert gateway.stats.snapshot()["faults"] == {
        "drop": 1,
        "error": 1,
        "latency": 1,
        "outage": 1,
        "spike": 1,
    }
    call(gateway, "POST", "/admin/reset", key=None)
    assert gateway.stats.snapshot()["faults"] == {}


def test_the_decline_list_declines_a_customer_until_it_is_changed(gateway: app.Gateway) -> None:
    status, listing = call(gateway, "PUT", "/admin/declines", {"customerIds": ["c-1"]}, key=None)
    assert (status, listing) == (200, {"customerIds": ["c-1"]})
    assert call(gateway, "GET", "/admin/declines", key=None)[1] == {"customerIds": ["c-1"]}
    status, payment = call(gateway, "POST", "/v1/payments", PAYMENT, key="dry-1")
    assert (status, payment["status"], payment["reason"]) == (201, "declined", "insufficient_funds")
    # A decline is final for its key: the same key replays it even after the card is topped up.
    call(gateway, "PUT", "/admin/declines", {"customerIds": []}, key=None)
    assert call(gateway, "POST", "/v1/payments", PAYMENT, key="dry-1")[1]["status"] == "declined"
    assert call(gateway, "POST", "/v1/payments", PAYMENT, key="dry-2")[1]["status"] == "approved"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"customerIds": "c-1"}, "list of non-empty strings"),
        ({"customerIds": [""]}, "list of non-empty strings"),
        ({"customerIds": [7]}, "list of non-empty strings"),
        ({"customers": ["c-1"]}, "unknown field 'customers'"),
    ],
)
def test_a_bad_decline_list_is_refused_naming_the_field(
    gateway: app.Gateway, body: object, says: str
) -> None:
    status, error = call(gateway, "PUT", "/admin/declines", body, key=None)
    assert status == 400 and says in str(error["error"])
    assert call(gateway, "GET", "/admin/declines", key=None)[1] == {"customerIds": []}


def test_reset_empties_the_decline_list(gateway: app.Gateway) -> None:
    call(gateway, "PUT", "/admin/declines", {"customerIds": ["c-1"]}, key=None)
    call(gateway, "POST", "/admin/reset", key=None)
    assert call(gateway, "GET", "/admin/declines", key=None)[1] == {"customerIds": []}
