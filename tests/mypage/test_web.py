"""The customer web app against the real control plane: a customer signs in, applies through HTTP,
the operator confirms the Rental, and the customer cancels it from MyPage (issue 15).

MyPage runs inside the operator (with the reference gateway) or as `rental-operator mypage`, as a
process; the test is a browser without script: a cookie jar, forms posted as a browser posts them
(with the Origin header), redirects looked at rather than followed.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from rental_devenv import testkit
from rental_gateway import testing
from rental_operator import kubeapi
from rental_operator.api import rental as api_rental
from rental_operator.mypage import commands

from .conftest import MyPageFactory, OperatorFactory, token

GOOD = {"name": "Kim Minjun", "phone": "+821012345678", "address": "Seoul, Gangnam-gu 1", "months": "12"}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Browser:
    """One customer's browser: cookies kept, redirects returned as they are."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)

    def request(
        self, path: str, data: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        sent = {
            "Accept-Language": "en",
            **({"Origin": self.url} if data is not None else {}),
            **(headers or {}),
        }
        request = urllib.request.Request(self.url + path, data=body, headers=sent)
        try:
            with self.opener.open(request, timeout=15) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()

    def sign_in(self, customer: str) -> None:
        status, headers, _ = self.request(f"/signin?token={urllib.parse.quote(token(customer))}")
        assert status == 303 and headers["Location"] == "/shop"

    def form(self, path: str) -> dict[str, str]:
        status, _, page = self.request(path)
        assert status == 200, page
        return {name: value for name, value in re.findall(r'name="(csrf|application)" value="([^"]*)"', page)}


def _purifier_shown(browser: Browser, path: str) -> bool:
    return browser.request(path)[0] == 200


def test_apply_confirm_and_cancel_through_the_web_app(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator_factory: OperatorFactory
) -> None:
    operator = operator_factory(gateway)
    cluster.create(testkit.purifier("aqua", stock=2, fee=30_000))
    kim = Browser(operator.mypage.url)
    kim.sign_in("kim")
    path = f"/shop/{cluster.namespace}/aqua"
    testkit.wait_for(lambda: _purifier_shown(kim, path), timeout=30, what="the purifier in the catalog")
    assert "Model aqua" in kim.request("/shop")[2]

    # Apply; the same form again (a double submit) makes no second Rental.
    form = kim.form(path)
    first = kim.request(path, {**form, **GOOD, "customer": "lee"})
    assert first[0] == 303 and first[1]["Location"] == "/mypage/kim", first[2]
    again = kim.request(path, {**form, **GOOD})
    assert again[0] == 303
    [rental] = cluster.items("rentals")
    name = rental["metadata"]["name"]
    assert name.startswith("r-")
    assert rental["spec"]["customer"]["id"] == "kim"  # from the sign-in, not the form
    assert rental["spec"]["purifier"] == "aqua" and rental["spec"]["months"] == 12

    # The operator confirms it; MyPage (with the session, no token) shows it move.
    def phase() -> str | None:
        status, _, body = kim.request("/api/v1/customers/kim/rentals")
        assert status == 200
        found = [r for r in json.loads(body)["rentals"] if r["name"] == name]
        if found and found[0]["delivery"]["phase"] == "Delivered":
            return str(found[0]["phase"])
        return None

    assert testkit.wait_for(phase, timeout=60, what="the rental confirmed and delivered") == "Confirmed"
    status, headers, page = kim.request("/mypage/kim")
    assert status == 200
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    cancel_path = f"/mypage/kim/rentals/{cluster.namespace}/{name}/cancel"
    assert f'href="{cancel_path}"' in page and 'src="/static/mypage.js"' in page

    # The confirmation says what cancelling now does: delivered just now, so a withdrawal.
    status, _, confirm = kim.request(cancel_path)
    assert status == 200
    assert "Every charge is refunded: 30,000 KRW" in confirm
    csrf_token = re.findall(r'name="csrf" value="([^"]*)"', confirm)[0]

    # Refused, and nothing written: no CSRF token; another customer (with their own valid token).
    assert kim.request(cancel_path, {})[0] == 403
    lee = Browser(operator.mypage.url)
    lee.sign_in("lee")
    lee_csrf = lee.form(path)["csrf"]
    assert lee.request(cancel_path, {"csrf": lee_csrf})[0] == 403
    assert lee.request(f"/mypage/lee/rentals/{cluster.namespace}/{name}/cancel", {"csrf": lee_csrf})[0] == 403
    assert not (cluster.get("rentals", name) or {})["spec"].get("cancelled")

    done = kim.request(cancel_path, {"csrf": csrf_token})
    assert done[0] == 303 and done[1]["Location"] == "/mypage/kim"
    assert (cluster.get("rentals", name) or {})["spec"]["cancelled"] is True
    testkit.wait_for(
        lambda: cluster.phase("rentals", name) == "Cancelled", timeout=60, what="the rental cancelled"
    )


def test_bad_fields_limits_and_csrf_on_the_mypage_process(
    cluster: testkit.Cluster, mypage_factory: MyPageFactory
) -> None:
    mypage = mypage_factory(web_open_applications="1")
    cluster.create(testkit.purifier("aqua", stock=2, fee=30_000))
    kim = Browser(mypage.client.url)
    kim.sign_in("kim")
    path = f"/shop/{cluster.namespace}/aqua"
    testkit.wait_for(lambda: _purifier_shown(kim, path), timeout=30, what="the purifier in the catalog")

    # Korean unless English is asked for (as MyPage's page).
    korean = kim.request(path, headers={"Accept-Language": "ko-KR,ko;q=0.9"})
    assert korean[0] == 200 and '<html lang="ko">' in korean[2] and "30,000원" in korean[2]

    # A bad phone comes back next to its field; nothing is created.
    form = kim.form(path)
    status, _, page = kim.request(path, {**form, **GOOD, "phone": "010-1234-5678"})
    assert status == 422
    assert re.search(r'id="phone-error">Enter a mobile number in international form', page)
    # A POST without a CSRF token, or from another site, is refused.
    assert kim.request(path, {"application": form["application"], **GOOD})[0] == 403
    assert kim.request(path, {**form, **GOOD}, {"Origin": "https://evil.example"})[0] == 403
    assert cluster.items("rentals") == []

    # One open application allowed: the first is created, a second (a new form) is 429 once MyPage
    # has seen the first (no operator runs: it stays Pending).
    assert kim.request(path, {**form, **GOOD})[0] == 303
    [rental] = cluster.items("rentals")

    def refused() -> bool:
        status, _, page = kim.request(path, {**kim.form(path), **GOOD})
        assert status in (303, 429), page
        return status == 429 and "at most 1" in page

    testkit.wait_for(refused, timeout=30, what="a second open application refused")
    assert [r["metadata"]["name"] for r in cluster.items("rentals")] == [rental["metadata"]["name"]]
    assert token("kim") not in mypage.log_path.read_text()


def test_the_api_servers_422_maps_onto_the_form(cluster: testkit.Cluster, kubeconfig: Path) -> None:
    # The local check and the schema agree (both from the same model), so the API server's own
    # refusal is shown by sending what the local check would have stopped.
    cluster.create(testkit.purifier("aqua", stock=1))
    kube = kubeapi.Kube(kubeapi.load_client(str(kubeconfig)))
    writer = commands.Writer(kube)
    customer = api_rental.Customer.model_construct(id="kim", name="Kim", phone="010-1234", address="Seoul")
    spec = api_rental.RentalSpec.model_construct(
        purifier="aqua", customer=customer, months=12, cancelled=False
    )
    outcome = asyncio.run(writer.apply(cluster.namespace, "r-0123456789abcdef", spec))
    assert outcome.result == "invalid"
    assert set(outcome.fields) == {"phone"}
    assert cluster.items("rentals") == []
