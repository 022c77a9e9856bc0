"""The gateway as the operator meets it: a real process on 127.0.0.1, driven over HTTP with requests.

Grouped by scenario: start-up and shutdown, payments, shipments, SMS, authentication, fault
injection, persistence across a restart.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from rental_gateway import testing

StartGateway = Callable[..., testing.GatewayProcess]

PAYMENT = {"amount": 120_000, "currency": "KRW", "customerId": "cust-1", "reference": "rent-1"}
SHIPMENT = {"reference": "rent-1", "address": "1 Sejong-daero, Seoul", "item": "AQ-100"}
MESSAGE = {"to": "+821012345678", "text": "Your purifier is on its way", "reference": "rent-1"}


def post(
    gateway: testing.GatewayProcess,
    path: str,
    body: object,
    key: str | None,
    *,
    token: str | None = None,
    timeout: float = 10,
) -> requests.Response:
    headers = {}
    if key is not None:
        headers["Idempotency-Key"] = key
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(gateway.url + path, json=body, headers=headers, timeout=timeout)


def get(gateway: testing.GatewayProcess, path: str) -> requests.Response:
    return requests.get(gateway.url + path, timeout=10)


def body(answer: requests.Response) -> dict[str, Any]:
    payload: dict[str, Any] = answer.json()
    return payload


# Start-up and shutdown.


def test_prints_the_url_first_and_answers_health(start_gateway: StartGateway) -> None:
    gateway = start_gateway()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", gateway.url)
    answer = get(gateway, "/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
    assert answer.headers["Content-Type"] == "application/json"
    assert gateway.stop() == 0
    assert '"GET /healthz" 200' in gateway.log_text()  # one log line per request, on stderr


def test_a_bad_flag_stops_start_up_with_one_line(start_gateway: StartGateway) -> None:
    with pytest.raises(testing.GatewayStartError) as raised:
        start_gateway("--error-rate", "2")
    assert "exit status 2" in str(raised.value)
    assert "errorRate must be a number between 0 and 1" in str(raised.value)
    assert "Traceback" not in str(raised.value)


# Payments.


def test_an_approved_payment_and_its_replay(start_gateway: StartGateway) -> None:
    gateway = start_gateway()
    first = post(gateway, "/v1/payments", PAYMENT, "rent-1/charge")
    assert first.status_code == 201
    payment = body(first)
    assert {key: payment[key] for key in ("status", "amount", "currency")} == {
        "status": "approved",
        "amount": 120_000,
        "currency": "KRW",
    }
    again = post(gateway, "/v1/payments", dict(reversed(PAYMENT.items())), "rent-1/charge")
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert body(get(gateway, f"/v1/payments/{payment['id']}")) == payment
    assert len(gateway.ledger(reference="rent-1")["payments"]) == 1


def test_the_same_key_with_another_body_is_a_conflict(start_gateway: StartGateway) -> None:
    gateway = start_gateway()
    assert post(gateway, "/v1/payments", PAYMENT, "k").status_code == 201
    conflict = post(gateway, "/v1/payments", PAYMENT | {"amount": 99}, "k")
    assert conflict.status_code == 409 and "Idempotency-Key" in body(conflict)["error"]
    assert [row["amount"] for row in gateway.ledger()["payments"]] == [120_000]


def test_a_post_without_idempotency_key_is_refused(start_gateway: StartGateway) -> None:
    gateway = start_gateway()
    for path, payload in (("/v1/payments", PAYMENT), ("/v1/shipments", SHIPMENT), ("/v1/messages", MESSAGE)):
        answer = post(gateway, path, payload, None)
        assert answer.status_code == 400 and "Idempotency-Key" in body(answer)["error"]
    assert gateway.stats()["ledger"]["payments"] == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"amount": 1.5}, "amount"), ({"currency": "won"}, "currency"), ({"customerId": ""}, "customerId")],
)
def test_a_bad_payment_names_the_field(
    start_gateway: StartGateway, changes: dict[str, object], field: str
) -> None:
    gateway = start_gateway()
    answer = post(gateway, "/v1/payments", PAYMENT | changes, "k")
    assert answer.status_code == 400 and body(answer)["error"].startswith(field)


def test_declines_by_customer_and_by_limit(start_gateway: StartGateway) -> None:
    gateway = start_gateway("--decline-above", "500000")
    by_customer = body(post(gateway, "/v1/payments", PAYMENT | {"customerId": "decline-lee"}, "a"))
    by_limit = body(post(gateway, "/v1/payments", PAYMENT | {"amount": 500_001}, "b"))
    at_limit = body(post(gateway, "/v1/payments", PAYMENT | {"amount": 500_000}, "c"))
    assert (by_customer["status"], by_customer["reason"]) == ("declined", "card_declined")
    assert (by_limit["status"], by_limit["reason"]) == ("declined", "amount_limit_exceeded")
    assert at_limit["status"] == "approved" and "reason" not in at_limit
    refused = post(gateway, f"/v1/payments/{by_customer['id']}/refund", {}, "refund-a")
    assert refused.status_code == 409
    assert body(get(gateway, f"/v1/payments/{by_customer['id']}"))["status"] == "declined"


def test_refunds_are_idempotent(start_gateway: StartGateway) -> None:
    gateway = start_gateway()
    payment = body(post(gateway, "/v1/payments", PAYMENT, "charge"))
    refund_path = f"/v1/payments/{payment['id']}/refund"
    first = post(gateway, refund_path, {}, "refund")
    assert first.status_code == 200 and body(first)["status"] == "refunded"
    replay = post(gateway, refund_path, {}, "refund")
    assert replay.content == first.content
    another_key = post(gateway, refund_path, {}, "refund-again")
    assert another_key.status_code == 200
    assert body(another_key)["refundedAt"] == body(first)["refundedAt"]
    assert body(get(gateway, f"/v1/payments/{payment['id']}"))["status"] == "refunded"


def test_unknown_ids_are_404(start_gateway: StartGateway) -> None:
    gateway = start_gateway()
    assert get(gateway, "/v1/payments/pay_nope").status_code == 404
    assert post(gateway, "/v1/payments/pay_nope/refund", {}, "k1").status_code == 404
    assert get(gateway, "/v1/shipments/shp_nope").status_code == 404
    for action in ("cancel", "return"):
        answer = post(gateway, f"/v1/shipments/shp_nope/{action}", {}, f"k-{action}")
        assert answer.status_code == 404 and "not found" in body(answer)["error"]


def test_racing_retries_charge_once(start_gateway: StartGateway) -> None:
    gateway = start_gateway()
    answers: list[bytes] = []

    def charge() -> None:
        answers.append(post(gateway, "/v1/payments", PAYMENT, "rent-1/charge").content)

    threads = [threading.Thread(target=charge) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 12 and len(set(answers)) == 1
    assert len(gateway.ledger()["payments"]) == 1


# Shipments.


def test_a_shipment_is_delivered_automatically(start_gateway: StartGateway) -> None:
    gateway = start_gateway("--auto-deliver-seconds", "0.5")
    created = post(gateway, "/v1/shipments", SHIPMENT, "ship")
    assert created.status_code == 201
    shipment = body(created)
    assert shipment["status"] == "shipping" and shipment["trackingNumber"]
    assert body(get(gateway, f"/v1/shipments/{shipment['id']}"))["status"] == "shipping"
    time.sleep(0.7)
    assert body(get(gateway, f"/v1/shipments/{shipment['id']}"))["status"] == "delivered"
    returning = post(gateway, f"/v1/shipments/{shipment['id']}/return", {}, "return")
    assert body(returning)["status"] == "returning"
    time.sleep(0.7)
    assert body(get(gateway, f"/v1/shipments/{shipment['id']}"))["status"] == "returned"
    assert gateway.ledger(reference="rent-1")["shipments"][0]["status"] == "returned"


def test_cancel_only_while_shipping(start_gateway: StartGateway) -> None:
    gateway = start_gateway("--auto-deliver-seconds", "0")
    early = body(post(gateway, "/v1/shipments", SHIPMENT, "ship-1"))
    late = body(post(gateway, "/v1/shipments", SHIPMENT | {"reference": "rent-2"}, "ship-2"))

    cancelled = post(gateway, f"/v1/shipments/{early['id']}/cancel", {}, "cancel-1")
    assert (cancelled.status_code, body(cancelled)["status"]) == (200, "cancelled")
    assert (
        body(post(gateway, f"/v1/shipments/{early['id']}/cancel", {}, "cancel-1b"))["status"] == "cancelled"
    )
    assert post(gateway, f"/v1/shipments/{early['id']}/return", {}, "return-1").status_code == 409

    assert post(gateway, f"/v1/shipments/{late['id']}/return", {}, "return-2a").status_code == 409
    assert gateway.deliver(late["id"])["status"] == "delivered"
    refused = post(gateway, f"/v1/shipments/{late['id']}/cancel", {}, "cancel-2")
    assert refused.status_code == 409 and "delivered" in body(refused)["error"]
    assert body(post(gateway, f"/v1/shipments/{late['id']}/return", {}, "return-2b"))["status"] == "returning"
    time.sleep(0.3)  # auto-delivery is off: nothing moves on its own
    assert body(get(gateway, f"/v1/shipments/{late['id']}"))["status"] == "returning"
    assert gateway.deliver(late["id"])["status"] == "returned"
    with pytest.raises(urllib.error.HTTPError) as raised:
        gateway.deliver(late["id"])
    assert raised.value.code == 409


def test_a_bad_shipment_names_the_field(start_gateway: StartGateway) -> None:
    gateway = start_gateway()
    answer = post(gateway, "/v1/shipments", SHIPMENT | {"address": ""}, "ship")
    assert answer.status_code == 400 and body(answer)["error"] == "address must be a non-empty string"


# SMS.


def test_a_message_is_accepted_once(start_gateway: StartGateway) -> None:
    gateway = start_gateway()
    first = post(gateway, "/v1/messages", MESSAGE, "rent-1/Confirmed")
    assert first.status_code == 202 and body(first)["id"].startswith("msg_")
    assert post(gateway, "/v1/messages", MESSAGE, "rent-1/Confirmed").content == first.content
    assert len(gateway.ledger(to="+821012345678")["messages"]) == 1


@pytest.mark.parametrize("to", ["01012345678", "+82 10 1234 5678", "+0821012345678", ""])
def test_a_phone_number_must_be_e164(start_gateway: StartGateway, to: str) -> None:
    gateway = start_gateway()
    answer = post(gateway, "/v1/messages", MESSAGE | {"to": to}, "sms")
    assert answer.status_code == 400 and body(answer)["error"].startswith("to must be")


# Authentication.


def test_the_api_key_from_the_environment_is_required(start_gateway: StartGateway) -> None:
    gateway = start_gateway(api_key="s3cret")  # passed as GATEWAY_API_KEY
    missing = post(gateway, "/v1/payments", PAYMENT, "k")
    assert missing.status_code == 401 and body(missing)["error"]
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert post(gateway, "/v1/payments", PAYMENT, "k", token="wrong").status_code == 401
    assert requests.get(gateway.url + "/admin/ledger", timeout=10).status_code == 401
    assert get(gateway, "/healthz").status_code == 200
    assert post(gateway, "/v1/payments", PAYMENT, "k", token="s3cret").status_code == 201
    assert len(gateway.ledger()["payments"]) == 1  # the harness sends the key


def test_the_api_key_flag(start_gateway: StartGateway) -> None:
    gateway = start_gateway("--api-key", "flagged")
    assert post(gateway, "/v1/messages", MESSAGE, "k").status_code == 401
    assert post(gateway, "/v1/messages", MESSAGE, "k", token="flagged").status_code == 202


# Fault injection.


def test_error_rate_one_fails_before_any_effect(start_gateway: StartGateway) -> None:
    gateway = start_gateway()
    gateway.set_faults(errorRate=1.0)
    for _ in range(3):
        failed = post(gateway, "/v1/payments", PAYMENT, "rent-1/charge")
        assert failed.status_code == 503 and "injected" in body(failed)["error"]
    assert gateway.ledger() == {"payments": [], "shipments": [], "messages": []}
    assert gateway.stats()["routes"]["POST /v1/payments"] == {"503": 3}
    gateway.set_faults(errorRate=0.0)
    assert post(gateway, "/v1/payments", PAYMENT, "rent-1/charge").status_code == 201  # the key was not spent


def test_error_rate_from_the_flag_and_per_partner(start_gateway: StartGateway) -> None:
    gateway = start_gateway("--error-rate", "1", "--fault-partners", "payments")
    assert gateway.admin("GET", "/admin/faults")["errorRate"] == 1.0
    assert post(gateway, "/v1/payments", PAYMENT, "k").status_code == 503
    assert post(gateway, "/v1/shipments", SHIPMENT, "k").status_code == 201
    assert post(gateway, "/v1/messages", MESSAGE, "k").status_code == 202
    assert gateway.stats()["partners"] == {"payments": 1, "shipping": 1, "sms": 1}


def test_a_partial_error_rate_fails_some_requests(start_gateway: StartGateway) -> None:
    gateway = start_gateway("--error-rate", "0.5", "--seed", "3")
    codes = [post(gateway, "/v1/messages", MESSAGE, f"k-{n}").status_code for n in range(40)]
    assert 5 < codes.count(503) < 35
    assert codes.count(202) == len(gateway.ledger()["messages"])


def test_an_outage_answers_503_everywhere_then_recovers(start_gateway: StartGateway) -> None:
    gateway = start_gateway()
    payment = body(post(gateway, "/v1/payments", PAYMENT, "charge"))
    gateway.set_faults(outage="unavailable")
    assert get(gateway, f"/v1/payments/{payment['id']}").status_code == 503
    assert post(gateway, "/v1/messages", MESSAGE, "sms").status_code == 503
    assert get(gateway, "/healthz").status_code == 200  # only partner endpoints go down
    gateway.set_faults(outage="off")
    assert get(gateway, f"/v1/payments/{payment['id']}").status_code == 200


def test_a_drop_outage_closes_the_connection(start_gateway: StartGateway) -> None:
    gateway = start_gateway("--outage", "drop")
    with pytest.raises(requests.ConnectionError):
        post(gateway, "/v1/payments", PAYMENT, "charge")
    assert gateway.ledger()["payments"] == []
    assert gateway.stats()["routes"]["POST /v1/payments"] == {"dropped": 1}
    gateway.set_faults(outage=False)
    assert post(gateway, "/v1/payments", PAYMENT, "charge").status_code == 201


def test_latency_can_outlast_a_client_timeout_without_a_double_charge(start_gateway: StartGateway) -> None:
    gateway = start_gateway("--latency-ms", "400")
    started = time.monotonic()
    assert post(gateway, "/v1/messages", MESSAGE, "sms").status_code == 202
    assert time.monotonic() - started >= 0.4
    with pytest.raises(requests.Timeout):
        post(gateway, "/v1/payments", PAYMENT, "charge", timeout=0.1)
    deadline = time.monotonic() + 10
    while not gateway.ledger()["payments"]:  # the slow request still goes through, as with a real provider
        assert time.monotonic() < deadline, "the timed-out payment never reached the ledger"
        time.sleep(0.05)
    gateway.set_faults(latencyMs=0)
    retry = post(gateway, "/v1/payments", PAYMENT, "charge")
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert len(gateway.ledger()["payments"]) == 1


def test_reset_restores_the_start_up_state(start_gateway: StartGateway) -> None:
    gateway = start_gateway("--latency-ms", "10")
    post(gateway, "/v1/payments", PAYMENT, "charge")
    gateway.set_faults(outage="unavailable")
    gateway.reset()
    assert gateway.admin("GET", "/admin/faults")["outage"] == "off"
    assert gateway.admin("GET", "/admin/faults")["latencyMs"] == 10
    assert gateway.ledger()["payments"] == []
    assert body(post(gateway, "/v1/payments", PAYMENT, "charge"))["status"] == "approved"


# Persistence.


def test_the_ledger_survives_a_restart(start_gateway: StartGateway, tmp_path: Path) -> None:
    db = tmp_path / "kept.sqlite3"
    first = start_gateway("--auto-deliver-seconds", "0", db=db)
    payment = body(post(first, "/v1/payments", PAYMENT, "charge"))
    shipment = body(post(first, "/v1/shipments", SHIPMENT, "ship"))
    assert first.stop() == 0

    second = start_gateway("--auto-deliver-seconds", "0", db=db)
    assert second.url  # a new port, the same ledger
    assert body(get(second, f"/v1/payments/{payment['id']}")) == payment
    assert body(get(second, f"/v1/shipments/{shipment['id']}"))["status"] == "shipping"
    replay = post(second, "/v1/payments", PAYMENT, "charge")
    assert body(replay)["id"] == payment["id"] and replay.headers["Idempotent-Replayed"] == "true"
    assert post(second, "/v1/payments", PAYMENT | {"amount": 1}, "charge").status_code == 409
    assert len(second.ledger()["payments"]) == 1
