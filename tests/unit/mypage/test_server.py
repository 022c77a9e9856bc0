"""mypage.server: the routes of CONTRACT §4 over a projection, with access checks, probes and metrics.

Runs the real aiohttp application on a loopback port (aiohttp's test server), no cluster needed.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from typing import Any

import multidict
import prometheus_client
import pytest
from aiohttp import test_utils

from rental_operator import config
from rental_operator.mypage import auth, projection, server

RentalFactory = Callable[..., dict[str, Any]]
PurifierFactory = Callable[..., dict[str, Any]]
SECRET = b"s" * 32


def _token(customer: str) -> str:
    return auth.mint(SECRET, customer, expires=int(time.time()) + 600)


def _bearer(customer: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(customer)}"}


def _run(test: Callable[[test_utils.TestClient[Any, Any]], Coroutine[Any, Any, None]], app: Any) -> None:
    async def main() -> None:
        async with test_utils.TestClient(test_utils.TestServer(app)) as client:
            await test(client)

    asyncio.run(main())


@pytest.fixture
def view(rental_body: RentalFactory, purifier_body: PurifierFactory) -> projection.Projection:
    view = projection.Projection()
    view.apply("Purifier", None, purifier_body())
    view.apply("Rental", None, rental_body("mine", customer="cust-1"))
    view.apply("Rental", None, rental_body("theirs", customer="cust-2", tracking="SECRET-TRK"))
    view.mark_ready()
    return view


def _app(view: projection.Projection, **policy: Any) -> Any:
    return server.make_app(view, auth.Policy(**{"mode": "token", "secret": SECRET, **policy}))


def test_the_json_api_answers_in_the_contract_shape(view: projection.Projection) -> None:
    async def test(client: test_utils.TestClient[Any, Any]) -> None:
        response = await client.get("/api/v1/customers/cust-1/rentals", headers=_bearer("cust-1"))
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Cache-Control"] == "no-store"
        body = await response.json()
        assert set(body) == {"customerId", "rentals", "asOf"}
        assert body["customerId"] == "cust-1"
        datetime.datetime.fromisoformat(body["asOf"])  # RFC 3339
        assert body["asOf"].endswith("Z")
        [rental] = body["rentals"]
        assert {
            "namespace",
            "name",
            "purifier",
            "model",
            "phase",
            "payment",
            "delivery",
            "updatedAt",
        } <= set(rental)
        assert rental["namespace"] == "shop"
        assert rental["name"] == "mine"
        assert rental["purifier"] == "aqua-300"
        assert rental["model"] == "AquaPure 300"
        assert rental["phase"] == "Confirmed"
        assert rental["payment"] == {"phase": "Approved", "amount": 360_000, "currency": "KRW"}
        assert rental["delivery"] == {"phase": "Delivered", "trackingNumber": "TRK-1"}
        assert rental["updatedAt"] == "2026-11-01T10:30:00Z"
        assert [entry["phase"] for entry in rental["history"]][-1] == "Delivered"

    _run(test, _app(view))


def test_an_unknown_customer_gets_an_empty_list(view: projection.Projection) -> None:
    async def test(client: test_utils.TestClient[Any, Any]) -> None:
        response = await client.get("/api/v1/customers/new-1/rentals", headers=_bearer("new-1"))
        assert response.status == 200
        assert (await response.json())["rentals"] == []

    _run(test, _app(view))


def test_the_page_is_html_with_a_strict_policy(view: projection.Projection) -> None:
    async def test(client: test_utils.TestClient[Any, Any]) -> None:
        response = await client.get("/mypage/cust-1", params={"token": _token("cust-1")})
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        text = await response.text()
        assert "TRK-1" in text
        assert "SECRET-TRK" not in text

    _run(test, _app(view))


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/api/v1/customers/cust-2/rentals", None, 401),
        ("/api/v1/customers/cust-2/rentals", {"Authorization": "Bearer forged.1.x"}, 401),
        ("/api/v1/customers/cust-2/rentals", "cust-1", 403),
        ("/mypage/cust-2", None, 401),
        ("/mypage/cust-2", "cust-1", 403),
        ("/mypage/cust-2?token={cust-1}", None, 403),
        # The API does not take a token from the URL (it would land in logs); only the page link does.
        ("/api/v1/customers/cust-2/rentals?token={cust-2}", None, 401),
    ],
)
def test_one_customer_cannot_read_another(
    view: projection.Projection, path: str, headers: Any, status: int
) -> None:
    async def test(client: test_utils.TestClient[Any, Any]) -> None:
        sent = _bearer(headers) if isinstance(headers, str) else headers
        response = await client.get(
            path.format_map({"cust-1": _token("cust-1"), "cust-2": _token("cust-2")}), headers=sent
        )
        assert response.status == status
        text = await response.text()
        assert "SECRET-TRK" not in text
        assert "theirs" not in text
        if status == 401:
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="mypage"'
        if path.startswith("/api/"):
            assert set(json.loads(text)) == {"error"}

    _run(test, _app(view))


def test_header_mode_takes_the_proxys_word(view: projection.Projection) -> None:
    async def test(client: test_utils.TestClient[Any, Any]) -> None:
        path = "/api/v1/customers/cust-1/rentals"
        assert (await client.get(path, headers={"X-Customer-Id": "cust-1"})).status == 200
        assert (await client.get(path, headers={"X-Customer-Id": "cust-2"})).status == 403
        assert (await client.get(path)).status == 401

    _run(test, _app(view, mode="header", secret=None))


@pytest.mark.parametrize(
    "sent",
    [
        # A proxy that appends its X-Customer-Id after the client's instead of replacing it.
        [("X-Customer-Id", "cust-1"), ("X-Customer-Id", "cust-2")],
        [("X-Customer-Id", "cust-2"), ("X-Customer-Id", "cust-1")],
        [("X-Customer-Id", "cust-2, cust-1")],
    ],
)
def test_header_mode_refuses_the_identity_header_sent_twice(
    view: projection.Projection, sent: list[tuple[str, str]]
) -> None:
    before = _sample("rental_mypage_requests_total", {"code": "400"})

    async def test(client: test_utils.TestClient[Any, Any]) -> None:
        api = await client.get("/api/v1/customers/cust-2/rentals", headers=multidict.CIMultiDict(sent))
        assert api.status == 400
        assert await api.json() == {"error": "The identity header was sent more than once."}
        page = await client.get("/mypage/cust-2", headers=multidict.CIMultiDict(sent))
        assert page.status == 400
        assert "SECRET-TRK" not in await page.text()

    _run(test, _app(view, mode="header", secret=None))
    assert _sample("rental_mypage_requests_total", {"code": "400"}) == before + 2


def test_token_mode_without_a_secret_refuses_with_503(view: projection.Projection) -> None:
    async def test(client: test_utils.TestClient[Any, Any]) -> None:
        response = await client.get("/api/v1/customers/cust-1/rentals", headers=_bearer("cust-1"))
        assert response.status == 503

    _run(test, _app(view, secret=None))


def test_not_ready_until_the_listing_is_loaded(rental_body: RentalFactory) -> None:
    loading = projection.Projection()
    loading.apply("Rental", None, rental_body("mine", customer="cust-1"))

    async def test(client: test_utils.TestClient[Any, Any]) -> None:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 503
        api = await client.get("/api/v1/customers/cust-1/rentals", headers=_bearer("cust-1"))
        assert api.status == 503
        assert api.headers["Retry-After"] == "1"
        assert (await client.get("/mypage/cust-1", params={"token": _token("cust-1")})).status == 503
        loading.mark_ready()
        ready = await client.get("/readyz")
        assert ready.status == 200
        # Ready or not, and nothing about how many rentals or customers there are (issue 13).
        assert await ready.text() == "ready\n"
        api = await client.get("/api/v1/customers/cust-1/rentals", headers=_bearer("cust-1"))
        assert api.status == 200

    _run(test, _app(loading))


def test_ids_that_cannot_be_customer_ids_are_404(view: projection.Projection) -> None:
    async def test(client: test_utils.TestClient[Any, Any]) -> None:
        response = await client.get("/api/v1/customers/a%20b/rentals")
        assert response.status == 404
        assert (await client.get("/mypage/" + "x" * 129)).status == 404

    _run(test, _app(view))


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_requests_are_counted_by_code_and_timed(view: projection.Projection) -> None:
    before_200 = _sample("rental_mypage_requests_total", {"code": "200"})
    before_401 = _sample("rental_mypage_requests_total", {"code": "401"})
    before_count = _sample("rental_mypage_request_duration_seconds_count")

    async def test(client: test_utils.TestClient[Any, Any]) -> None:
        await client.get("/api/v1/customers/cust-1/rentals", headers=_bearer("cust-1"))
        await client.get("/api/v1/customers/cust-1/rentals")
        await client.get("/healthz")

    _run(test, _app(view))
    assert _sample("rental_mypage_requests_total", {"code": "200"}) == before_200 + 2
    assert _sample("rental_mypage_requests_total", {"code": "401"}) == before_401 + 1
    assert _sample("rental_mypage_request_duration_seconds_count") == before_count + 3


def test_the_public_port_serves_no_metrics(view: projection.Projection) -> None:
    async def test(client: test_utils.TestClient[Any, Any]) -> None:
        await client.get("/healthz")  # so there is something to count
        response = await client.get("/metrics")
        assert response.status == 404
        assert "rental_mypage_requests_total" not in await response.text()

    _run(test, _app(view, mode="none"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_access_log_never_holds_a_token(
    view: projection.Projection, caplog: pytest.LogCaptureFixture
) -> None:
    token = _token("cust-1")
    port = _free_port()
    paths = [
        (f"/mypage/cust-1?token={token}", "/mypage/cust-1?[redacted]", 200),
        (f"/mypage/cust-1?lang=en&token={token}", "/mypage/cust-1?[redacted]", 200),
        # A token pasted where the customer id goes: the path can carry one too.
        (f"/mypage/{token}", "/mypage/[redacted]", 401),
        (f"/api/v1/customers/{token}/rentals", "/api/v1/customers/[redacted]/rentals", 401),
    ]

    def get(path: str) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}", headers={"Referer": f"https://mail.example/?t={token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    async def main() -> None:
        http = server.Server(_app(view), host="127.0.0.1", port=port, access_log=True)
        await http.start()
        try:
            for path, _, status in paths:
                assert await asyncio.to_thread(get, path) == status
        finally:
            await http.stop()

    with caplog.at_level(logging.INFO, logger="rental_operator.mypage.server"):
        asyncio.run(main())
    lines = [record.getMessage() for record in caplog.records if '"GET ' in record.getMessage()]
    assert len(lines) == len(paths)
    for line, (_, logged, status) in zip(lines, paths, strict=True):
        assert f'"GET {logged}" {status} ' in line
    assert token not in caplog.text
    assert token.rsplit(".", 1)[1] not in caplog.text  # not even the signature


def test_as_of_reports_when_a_watch_went_stale(view: projection.Projection) -> None:
    view.set_stale("Rental/*")
    stale_since = view.as_of()

    async def test(client: test_utils.TestClient[Any, Any]) -> None:
        await asyncio.sleep(0.05)
        response = await client.get("/api/v1/customers/cust-1/rentals", headers=_bearer("cust-1"))
        as_of = datetime.datetime.fromisoformat((await response.json())["asOf"]).timestamp()
        assert as_of == pytest.approx(stale_since, abs=0.001)

    _run(test, _app(view))


def test_policy_from_settings_reads_the_secret_file(tmp_path: Any) -> None:
    key = tmp_path / "key"
    key.write_text("f" * 40 + "\n")
    settings = config.load_mypage({"RENTAL_MYPAGE_TOKEN_SECRET_FILE": str(key)})
    policy = server.policy_from_settings(settings)
    assert policy.mode == "token"
    assert policy.secret == b"f" * 40


def test_rfc3339() -> None:
    assert server.rfc3339(0) == "1970-01-01T00:00:00Z"
    assert server.rfc3339(1.25) == "1970-01-01T00:00:01.250Z"


# --- the monthly contract in the JSON answer ------------------------------------------------------------
BillingFactory = Callable[..., dict[str, Any]]
# After the withdrawal window (it closed on 2026-11-15), inside the 12 mandatory months.
NOW = datetime.datetime(2026, 12, 10, tzinfo=datetime.UTC).timestamp()
LATE = {"period": 4, "since": "2027-02-01T09:00:05Z", "attempts": 2, "nextAttemptAt": "2027-02-04T09:00:03Z"}


def _rentals_json(*bodies: dict[str, Any], now: float = NOW) -> dict[str, dict[str, Any]]:
    """What the API answers cust-1 for these Rentals at `now`, by rental name."""
    view = projection.Projection(clock=lambda: now)
    for body in bodies:
        view.apply("Rental", None, body)
    view.mark_ready()
    answer: dict[str, Any] = {}

    async def test(client: test_utils.TestClient[Any, Any]) -> None:
        response = await client.get("/api/v1/customers/cust-1/rentals", headers=_bearer("cust-1"))
        assert response.status == 200
        answer.update(await response.json())

    _run(test, _app(view))
    return {rental["name"]: rental for rental in answer["rentals"]}


def test_a_rental_in_force_carries_its_contract_charges_and_cancellation(
    rental_body: RentalFactory, billing_body: BillingFactory
) -> None:
    rentals = _rentals_json(rental_body("r1", billing=billing_body(), receipts=2))
    rental = rentals["r1"]
    assert rental["billing"] == {
        "monthlyFee": 30_000,
        "currency": "KRW",
        "mandatoryMonths": 12,
        "earlyTerminationPercent": 10,
        "periodsPaid": 3,
        "periodsTotal": 36,
        "paidAmount": 90_000,
        "nextChargeAt": "2027-02-01T09:00:03Z",
        "termEndsAt": "2029-11-01T09:00:03Z",
        "withdrawalEndsAt": "2026-11-15T10:30:00Z",
        "pastDue": None,
    }
    assert rental["charges"] == [
        {"period": 2, "amount": 30_000, "at": "2026-12-01T09:00:05Z"},
        {"period": 3, "amount": 30_000, "at": "2027-01-01T09:00:04Z"},
    ]
    # 10% of the 9 unpaid mandatory months' fees.
    assert rental["cancellation"] == {"ending": "Termination", "refund": 0, "fee": 27_000}
    # Every field the contract had before is still there.
    assert rental["payment"] == {"phase": "Approved", "amount": 360_000, "currency": "KRW"}
    assert rental["delivery"] == {"phase": "Delivered", "trackingNumber": "TRK-1"}
    assert [entry["kind"] for entry in rental["history"]][-2:] == ["Billing", "Billing"]


def test_the_cancellation_is_priced_at_the_time_of_the_request(
    rental_body: RentalFactory, billing_body: BillingFactory
) -> None:
    body = rental_body("r1", billing=billing_body())
    within = datetime.datetime(2026, 11, 10, tzinfo=datetime.UTC).timestamp()
    assert _rentals_json(body, now=within)["r1"]["cancellation"] == {
        "ending": "Withdrawal",
        "refund": 90_000,
        "fee": 0,
    }
    after_mandatory = datetime.datetime(2027, 12, 1, tzinfo=datetime.UTC).timestamp()
    paid_up = rental_body("r1", billing=billing_body(periodsPaid=13, paidAmount=390_000))
    assert _rentals_json(paid_up, now=after_mandatory)["r1"]["cancellation"] == {
        "ending": "Termination",
        "refund": 0,
        "fee": 0,
    }


def test_a_past_due_rental_says_which_charge_and_when_it_is_tried_again(
    rental_body: RentalFactory, billing_body: BillingFactory
) -> None:
    rental = _rentals_json(rental_body("r1", phase="PastDue", billing=billing_body(pastDue=LATE)))["r1"]
    assert rental["phase"] == "PastDue"
    assert rental["billing"]["pastDue"] == {
        "period": 4,
        "since": "2027-02-01T09:00:05Z",
        "attempts": 2,
        "nextAttemptAt": "2027-02-04T09:00:03Z",
    }
    assert rental["cancellation"] == {"ending": "Termination", "refund": 0, "fee": 27_000}


@pytest.mark.parametrize(
    ("phase", "changes"),
    [
        ("Completed", {"periodsPaid": 36, "paidAmount": 1_080_000, "nextChargeAt": None}),
        ("Cancelled", {"ending": "Withdrawal", "refundedAmount": 90_000, "nextChargeAt": None}),
    ],
)
def test_a_completed_or_cancelled_rental_keeps_its_contract_and_previews_nothing(
    rental_body: RentalFactory, billing_body: BillingFactory, phase: str, changes: dict[str, Any]
) -> None:
    rental = _rentals_json(rental_body("r1", phase=phase, billing=billing_body(**changes)))["r1"]
    assert rental["phase"] == phase
    assert rental["billing"]["periodsPaid"] == changes.get("paidAmount", 90_000) // 30_000
    assert rental["billing"]["nextChargeAt"] is None
    assert rental["cancellation"] is None


def test_a_rental_without_a_contract_has_null_fields(rental_body: RentalFactory) -> None:
    rental = _rentals_json(rental_body("r1", phase=None))["r1"]
    # Like payment and delivery: always an object, null until the operator locks the terms.
    assert set(rental["billing"]) >= {
        "monthlyFee",
        "currency",
        "periodsPaid",
        "periodsTotal",
        "nextChargeAt",
        "termEndsAt",
        "pastDue",
    }
    assert set(rental["billing"].values()) == {None}
    assert rental["charges"] == []
    assert rental["cancellation"] is None
