"""MyPage on the real control plane: changes show up, readiness waits for the listing, a second
MyPage process serves the same data and keeps serving while the operator is down.
"""

from __future__ import annotations

import http.client
import urllib.request
from pathlib import Path
from typing import Any

from rental_devenv import testkit
from rental_gateway import testing

from .conftest import Gate, MyPageClient, MyPageFactory, OperatorFactory


def _rental_of(client: MyPageClient, customer: str, name: str, **expected: Any) -> dict[str, Any] | None:
    """The rental as MyPage shows it once it has the `expected` top-level values, else None."""
    rental = client.rental(customer, name)
    if rental is None or any(rental.get(key) != value for key, value in expected.items()):
        return None
    return rental


def _without_as_of(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key != "asOf"}


def test_a_rental_change_appears_in_the_api_and_on_the_page(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: OperatorFactory
) -> None:
    operator = operator_factory(gateway)
    mypage = operator.mypage
    cluster.create(testkit.purifier("aqua", stock=2, fee=30_000))
    cluster.create(testkit.rental("kim-aqua", "aqua", customer="kim", months=12))

    def delivered() -> dict[str, Any] | None:
        rental = _rental_of(mypage, "kim", "kim-aqua", phase="Confirmed")
        return rental if rental and rental["delivery"]["phase"] == "Delivered" else None

    rental = testkit.wait_for(delivered, timeout=60, what="a confirmed, delivered rental on MyPage")
    assert rental is not None
    status = (cluster.get("rentals", "kim-aqua") or {})["status"]
    assert rental["model"] == "Model aqua"
    # A monthly contract: the payment is the latest period's charge, one month's fee.
    assert rental["payment"] == {"phase": "Approved", "amount": 30_000, "currency": "KRW"}
    assert rental["delivery"]["trackingNumber"] == status["delivery"]["trackingNumber"]
    assert [entry["phase"] for entry in rental["history"]] == [entry["phase"] for entry in status["history"]]
    billing = rental["billing"]
    assert (billing["monthlyFee"], billing["currency"]) == (30_000, "KRW")
    assert (billing["periodsPaid"], billing["periodsTotal"], billing["paidAmount"]) == (1, 12, 30_000)
    assert billing["pastDue"] is None
    # Just delivered: within the withdrawal window, cancelling refunds everything paid.
    assert rental["cancellation"] == {"ending": "Withdrawal", "refund": 30_000, "fee": 0}
    page = mypage.page("kim")
    assert status["delivery"]["trackingNumber"] in page
    assert "Confirmed" in page and "Delivered" in page
    assert "1 of 12 months paid" in page and "If you cancel now: full refund of 30,000 KRW" in page

    cluster.patch("rentals", "kim-aqua", {"spec": {"cancelled": True}})
    testkit.wait_for(
        lambda: _rental_of(mypage, "kim", "kim-aqua", phase="Cancelled"),
        timeout=60,
        what="the cancellation on MyPage",
    )
    page = mypage.page("kim")
    assert "Cancelled" in page and "Refunded" in page
    assert "If you cancel now" not in page  # no longer in force: nothing to preview


def test_readyz_fails_until_the_initial_listing_is_loaded(
    cluster: testkit.Cluster,
    gated_kubeconfig: tuple[Path, Gate],
    mypage_factory: MyPageFactory,
) -> None:
    cluster.create(testkit.purifier("aqua", stock=1))
    cluster.create(testkit.rental("lee-aqua", "aqua", customer="lee"))
    path, gate = gated_kubeconfig
    mypage = mypage_factory(kubeconfig_path=path, wait_ready=False).client
    # Listening, but the listing cannot arrive: alive, not ready, and no customer answer yet.
    assert mypage.status("/healthz") == 200
    assert mypage.status("/readyz") == 503
    headers = {"Authorization": "Bearer x"}
    assert mypage.status("/api/v1/customers/lee/rentals", headers) == 401  # access is checked first
    assert mypage.status(f"/mypage/lee?token={mypage.page_link('lee').rpartition('=')[2]}") == 503
    gate.open()
    testkit.wait_for(mypage.ready, timeout=30, what="/readyz once the listing is through")
    [rental] = mypage.rentals("lee")["rentals"]
    assert (rental["name"], rental["phase"]) == ("lee-aqua", "Pending")  # no operator here


def test_a_second_mypage_serves_the_same_data_and_outlives_the_operator(
    cluster: testkit.Cluster,
    gateway: testing.GatewayProcess,
    operator_factory: OperatorFactory,
    mypage_factory: MyPageFactory,
) -> None:
    operator = operator_factory(gateway)
    cluster.create(testkit.purifier("aqua", stock=3))
    for name, customer in (("kim-1", "kim"), ("kim-2", "kim"), ("lee-1", "lee")):
        cluster.create(testkit.rental(name, "aqua", customer=customer))

    def all_delivered() -> bool:
        rentals = operator.mypage.rentals("kim")["rentals"] + operator.mypage.rentals("lee")["rentals"]
        return len(rentals) == 3 and all(r["delivery"]["phase"] == "Delivered" for r in rentals)

    testkit.wait_for(all_delivered, timeout=60, what="three delivered rentals in the operator's MyPage")

    second = mypage_factory().client  # started later, with its own list and watch
    for customer in ("kim", "lee"):
        assert _without_as_of(second.rentals(customer)) == _without_as_of(operator.mypage.rentals(customer))

    operator.stop()
    assert operator.mypage.status("/healthz") == 0  # the operator (and its MyPage) is gone
    # Still serving, and still following the cluster: a rental applied now shows up (Pending: nobody
    # processes it while the operator is down).
    assert len(second.rentals("kim")["rentals"]) == 2
    cluster.create(testkit.rental("kim-3", "aqua", customer="kim"))
    rental = testkit.wait_for(
        lambda: _rental_of(second, "kim", "kim-3", phase="Pending"),
        timeout=30,
        what="a rental applied while the operator is down",
    )
    assert rental is not None
    assert rental["payment"] == {"phase": None, "amount": None, "currency": None}
    assert "kim-3" in second.page("kim")


def test_one_customer_cannot_read_another_on_a_running_mypage(
    cluster: testkit.Cluster, mypage_factory: MyPageFactory
) -> None:
    cluster.create(testkit.purifier("aqua", stock=2))
    cluster.create(testkit.rental("kim-aqua", "aqua", customer="kim"))
    cluster.create(testkit.rental("lee-aqua", "aqua", customer="lee"))
    mypage = mypage_factory().client
    testkit.wait_for(lambda: mypage.rental("lee", "lee-aqua"), timeout=30, what="lee's rental")
    lee = "/api/v1/customers/lee/rentals"
    kims_token = mypage.page_link("kim").rpartition("token=")[2]
    assert mypage.status(lee) == 401
    assert mypage.status(lee, {"Authorization": f"Bearer {kims_token}"}) == 403
    assert mypage.status(f"/mypage/lee?token={kims_token}") == 403
    assert mypage.status("/mypage/lee") == 401
    assert [r["name"] for r in mypage.rentals("kim")["rentals"]] == ["kim-aqua"]

    proxied = mypage_factory(mypage_auth="header").client
    assert proxied.status(lee, {"X-Customer-Id": "lee"}) == 200
    assert proxied.status(lee, {"X-Customer-Id": "kim"}) == 403
    assert proxied.status(lee, {"Authorization": f"Bearer {kims_token}"}) == 401


def _write_status(cluster: testkit.Cluster, name: str, status: dict[str, Any]) -> None:
    cluster.custom.patch_namespaced_custom_object_status(
        "rental.purifier.io",
        "v1alpha1",
        cluster.namespace,
        "rentals",
        name,
        {"status": status},
        _content_type="application/merge-patch+json",
    )


def _entry(seq: int) -> dict[str, Any]:
    return {"seq": seq, "kind": "Rental", "phase": "Pending", "at": "2026-11-01T09:00:00Z", "message": "x"}


def test_a_status_mypage_cannot_read_leaves_everyone_else_served(
    cluster: testkit.Cluster, mypage_factory: MyPageFactory
) -> None:
    """Numbers the schema admits but MyPage cannot keep skip that rental, not MyPage (issue 13)."""
    cluster.create(testkit.purifier("aqua", stock=3))
    for name, customer in (("kim-aqua", "kim"), ("lee-aqua", "lee"), ("park-aqua", "park")):
        cluster.create(testkit.rental(name, "aqua", customer=customer))
    _write_status(cluster, "lee-aqua", {"phase": "Pending", "history": [_entry(2**40)]})
    # No operator here, so nothing rewrites these statuses; the listing MyPage starts from has lee's.
    process = mypage_factory()
    mypage = process.client
    assert [r["name"] for r in mypage.rentals("kim")["rentals"]] == ["kim-aqua"]
    assert mypage.rentals("lee")["rentals"] == []
    # Through the watch too: an amount past 2**53, then a good change after it.
    _write_status(
        cluster,
        "park-aqua",
        {
            "phase": "Pending",
            "payment": {"name": "p", "phase": "Pending", "amount": 2**62, "currency": "KRW"},
        },
    )
    _write_status(cluster, "kim-aqua", {"phase": "Pending", "message": "after the bad one"})
    testkit.wait_for(
        lambda: _rental_of(mypage, "kim", "kim-aqua", message="after the bad one"),
        timeout=30,
        what="the watch going on past a rental it cannot read",
    )
    assert mypage.rentals("park")["rentals"] == []
    assert mypage.ready()
    metrics = process.metrics()
    assert 'rental_mypage_skipped_objects_total{kind="Rental",reason="out_of_range"} 2.0' in metrics
    log = process.log_path.read_text()
    assert f"MyPage skips Rental {cluster.namespace}/lee-aqua: status.history[0].seq is {2**40}" in log
    assert f"{cluster.namespace}/park-aqua: status.payment.amount is {2**62}" in log


def _readyz(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
        return int(response.status), response.read().decode()


def test_the_public_port_tells_nothing_it_need_not(
    cluster: testkit.Cluster, mypage_factory: MyPageFactory
) -> None:
    """Issue 13: no counts on /readyz, metrics only on their own port, no token in the access log."""
    cluster.create(testkit.purifier("aqua", stock=1))
    cluster.create(testkit.rental("kim-aqua", "aqua", customer="kim"))
    process = mypage_factory()
    mypage = process.client
    testkit.wait_for(lambda: mypage.rental("kim", "kim-aqua"), timeout=30, what="kim's rental")
    assert _readyz(mypage.url) == (200, "ready\n")
    assert mypage.status("/metrics") == 404
    assert "rental_mypage_requests_total" in process.metrics()
    link = mypage.page_link("kim")
    assert mypage.status(link.removeprefix(mypage.url)) == 200
    testkit.wait_for(
        lambda: "/mypage/kim?[redacted]" in process.log_path.read_text(), timeout=10, what="the access log"
    )
    assert link.rpartition("token=")[2] not in process.log_path.read_text()


def test_header_mode_refuses_an_identity_header_sent_twice(
    cluster: testkit.Cluster, mypage_factory: MyPageFactory
) -> None:
    cluster.create(testkit.purifier("aqua", stock=1))
    cluster.create(testkit.rental("lee-aqua", "aqua", customer="lee"))
    process = mypage_factory(mypage_auth="header")
    assert process.client.status("/api/v1/customers/lee/rentals", {"X-Customer-Id": "lee"}) == 200
    # A proxy that appends its header after the client's: two header lines on the wire.
    connection = http.client.HTTPConnection("127.0.0.1", process.port, timeout=5)
    try:
        connection.putrequest("GET", "/api/v1/customers/lee/rentals")
        connection.putheader("X-Customer-Id", "lee")
        connection.putheader("X-Customer-Id", "kim")
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 400
        assert b"sent more than once" in response.read()
    finally:
        connection.close()
