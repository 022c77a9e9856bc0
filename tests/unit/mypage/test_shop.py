"""mypage.shop: the customer web app on a real aiohttp server over a projection, with a fake API.

Sign-in cookie, catalog, applying (idempotent names, field messages from the local check and from
the API server's 422, the open-applications limit), cancelling (preview, ownership, CSRF), the live
section of MyPage and the strict headers. No cluster: `FakeKube` stands in for `kubeapi.Kube`.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Coroutine
from typing import Any, cast

import pytest
from aiohttp import test_utils

from rental_operator import kubeapi
from rental_operator.mypage import auth, commands, projection, server, sessions, shop, shop_pages

SECRET = b"s" * 32
RentalFactory = Callable[..., dict[str, Any]]
PurifierFactory = Callable[..., dict[str, Any]]
Client = test_utils.TestClient[Any, Any]


class Refusal(Exception):  # noqa: N818  # as the API server names it
    """What the API server's refusals look like to kubeapi's callers: `status` and `body`."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = json.dumps(body)


class FakeKube:
    """The three calls the web app makes, over a dict of Rentals; `refuse` makes the next create fail."""

    def __init__(self) -> None:
        self.rentals: dict[tuple[str, str], dict[str, Any]] = {}
        self.creates: list[dict[str, Any]] = []
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.refuse: Exception | None = None

    def create_new(self, resource: Any, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.creates.append(body)
        if self.refuse is not None:
            raise self.refuse
        key = (namespace, body["metadata"]["name"])
        if key in self.rentals:
            raise kubeapi.Conflict("AlreadyExists")
        obj = {**body, "metadata": {**body["metadata"], "uid": f"uid-{len(self.rentals)}"}}
        self.rentals[key] = obj
        return obj

    def get(self, resource: Any, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self.rentals[(namespace, name)]
        except KeyError:
            raise kubeapi.NotFound(name) from None

    def merge_patch(
        self, resource: Any, obj: dict[str, Any], patch: dict[str, Any], *, guarded: bool = True
    ) -> dict[str, Any]:
        assert not guarded and patch["metadata"]["uid"] == obj["metadata"]["uid"]
        self.patches.append((obj["metadata"]["name"], patch))
        obj["spec"] = {**obj["spec"], **patch["spec"]}
        return obj


@pytest.fixture
def view(rental_body: RentalFactory, purifier_body: PurifierFactory) -> projection.Projection:
    view = projection.Projection()
    body = purifier_body()
    body["spec"].update(displayName="AquaPure <300>", mandatoryMonths=24, earlyTerminationPercent=10)
    body["status"] = {"available": 2}
    view.apply("Purifier", None, body)
    view.apply("Purifier", None, purifier_body("empty-1", model="Empty One"))
    view.apply("Rental", None, rental_body("mine", customer="cust-1"))
    view.apply("Rental", None, rental_body("theirs", customer="cust-2"))
    view.mark_ready()
    return view


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


def _run(
    view: projection.Projection,
    kube: FakeKube | None,
    test: Callable[[Client], Coroutine[Any, Any, None]],
    *,
    mode: str = "token",
    limit: int = 3,
) -> None:
    policy = auth.Policy(mode=mode, secret=SECRET if mode == "token" else None)  # type: ignore[arg-type]
    writer = commands.Writer(cast(kubeapi.Kube, kube)) if kube is not None else commands.Writer()
    app = server.make_app(view, policy, writer=writer, open_applications=limit)

    async def main() -> None:
        # English pages (without Accept-Language they are Korean, as MyPage's: see the last tests).
        async with test_utils.TestClient(
            test_utils.TestServer(app), headers={"Accept-Language": "en"}
        ) as client:
            await test(client)

    asyncio.run(main())


async def _sign_in(client: Client, customer: str = "cust-1") -> None:
    token = auth.mint(SECRET, customer, expires=int(time.time()) + 600)
    response = await client.get("/signin", params={"token": token}, allow_redirects=False)
    assert response.status == 303


def _hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} in the form"
    return found.group(1)


async def _form(client: Client, path: str = "/shop/shop/aqua-300") -> dict[str, str]:
    response = await client.get(path)
    assert response.status == 200
    page = await response.text()
    return {"csrf": _hidden(page, "csrf"), "application": _hidden(page, "application")}


GOOD = {"name": "Kim Minjun", "phone": "+82 10-1234-5678", "address": "Seoul, Gangnam-gu 1", "months": "24"}


# --- sign-in -----------------------------------------------------------------------------------------
def test_sign_in_sets_a_strict_session_cookie_and_redirects(view: projection.Projection) -> None:
    async def test(client: Client) -> None:
        token = auth.mint(SECRET, "cust-1", expires=int(time.time()) + 600)
        response = await client.get(
            "/signin", params={"token": token, "next": "/mypage/cust-1"}, allow_redirects=False
        )
        assert response.status == 303
        assert response.headers["Location"] == "/mypage/cust-1"
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith(f"{sessions.COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
        assert "Max-Age=" in cookie and "Secure" not in cookie  # the public URL is not https here
        assert token not in cookie
        value = response.cookies[sessions.COOKIE].value
        assert sessions.verify(SECRET, value) == "cust-1"
        # The cookie alone now opens the customer's page and API, not another's.
        assert (await client.get("/mypage/cust-1")).status == 200
        assert (await client.get("/api/v1/customers/cust-1/rentals")).status == 200
        assert (await client.get("/api/v1/customers/cust-2/rentals")).status == 403
        assert (await client.get("/mypage/cust-2")).status == 403

    _run(view, None, test)


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "shop"])
def test_sign_in_redirects_only_to_paths_of_this_site(view: projection.Projection, target: str) -> None:
    async def test(client: Client) -> None:
        token = auth.mint(SECRET, "cust-1", expires=int(time.time()) + 600)
        response = await client.get("/signin", params={"token": token, "next": target}, allow_redirects=False)
        assert response.headers["Location"] == "/shop"

    _run(view, None, test)


def test_a_bad_token_signs_nobody_in(view: projection.Projection) -> None:
    async def test(client: Client) -> None:
        response = await client.get("/signin", params={"token": "forged.1.abc"}, allow_redirects=False)
        assert response.status == 401
        assert sessions.COOKIE not in response.cookies
        assert (await client.get("/mypage/cust-1")).status == 401

    _run(view, None, test)


def test_a_secure_cookie_when_the_public_url_is_https(view: projection.Projection) -> None:
    app = server.make_app(view, auth.Policy(mode="token", secret=SECRET), public_url="https://shop.example")

    async def main() -> None:
        async with test_utils.TestClient(test_utils.TestServer(app)) as client:
            token = auth.mint(SECRET, "cust-1", expires=int(time.time()) + 600)
            response = await client.get("/signin", params={"token": token}, allow_redirects=False)
            assert "Secure" in response.headers["Set-Cookie"]

    asyncio.run(main())


# --- catalog -----------------------------------------------------------------------------------------
def test_the_catalog_shows_terms_in_words_from_memory(view: projection.Projection) -> None:
    async def test(client: Client) -> None:
        response = await client.get("/shop")
        assert response.status == 200
        page = await response.text()
        assert "AquaPure &lt;300&gt;" in page and "<300>" not in page  # escaped display name
        assert "30,000 KRW a month" in page
        assert "24 months" in page
        assert "10% of the monthly fees" in page
        assert "A unit is free now" in page
        assert "No unit free right now" in page  # empty-1: nothing available
        assert 'href="/shop/shop/aqua-300"' in page
        assert '<meta name="viewport"' in page and '<html lang="en">' in page
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe" not in csp
        assert "<script>" not in page and "style=" not in page
        assert response.headers["Cache-Control"] == "no-store"

    _run(view, None, test)


def test_the_purifier_page_offers_terms_from_the_mandatory_period(view: projection.Projection) -> None:
    async def test(client: Client) -> None:
        page = await (await client.get("/shop/shop/aqua-300")).text()
        assert "Sign in with the link" in page and "<form" not in page  # not signed in
        await _sign_in(client)
        page = await (await client.get("/shop/shop/aqua-300")).text()
        assert re.findall(r'<option value="(\d+)"', page) == ["24", "36", "48", "60"]
        for field in ("name", "phone", "address", "months"):
            assert f'<label for="{field}">' in page and f'id="{field}"' in page
        assert 'name="customer' not in page  # the customer id never comes from the form
        assert (await client.get("/shop/shop/nope")).status == 404

    _run(view, None, test)


def test_the_static_files_are_served_from_this_origin(view: projection.Projection) -> None:
    async def test(client: Client) -> None:
        script = await client.get("/static/mypage.js")
        assert script.status == 200 and script.content_type == "text/javascript"
        assert "/api/v1/customers/" in await script.text()
        assert (await client.get("/static/shop.css")).content_type == "text/css"
        assert (await client.get("/static/other.js")).status == 404

    _run(view, None, test)


# --- applying ----------------------------------------------------------------------------------------
def test_applying_creates_one_rental_for_the_signed_in_customer(
    view: projection.Projection, kube: FakeKube
) -> None:
    async def test(client: Client) -> None:
        await _sign_in(client)
        form = await _form(client)
        data = {**form, **GOOD, "customer": "cust-2"}  # a customer field is ignored
        first = await client.post("/shop/shop/aqua-300", data=data, allow_redirects=False)
        assert first.status == 303 and first.headers["Location"] == "/mypage/cust-1"
        again = await client.post("/shop/shop/aqua-300", data=data, allow_redirects=False)
        assert again.status == 303  # a double submit: the same name, the existing Rental is this customer's
        [created] = kube.rentals.values()
        assert len(kube.creates) == 2
        assert created["metadata"]["name"].startswith("r-")
        assert created["metadata"]["namespace"] == "shop"
        assert created["spec"]["customer"] == {
            "id": "cust-1",
            "name": "Kim Minjun",
            "phone": "+821012345678",
            "address": "Seoul, Gangnam-gu 1",
        }
        assert created["spec"]["purifier"] == "aqua-300" and created["spec"]["months"] == 24
        # A fresh form is a new application.
        other = await _form(client)
        assert other["application"] != form["application"]

    _run(view, kube, test)


def test_a_resubmit_seen_by_the_projection_is_not_sent_again(
    view: projection.Projection, kube: FakeKube, rental_body: RentalFactory
) -> None:
    async def test(client: Client) -> None:
        await _sign_in(client)
        form = await _form(client)
        await client.post("/shop/shop/aqua-300", data={**form, **GOOD}, allow_redirects=False)
        [(_, name)] = kube.rentals
        view.apply("Rental", None, rental_body(name, customer="cust-1", phase=None, version=50))
        again = await client.post("/shop/shop/aqua-300", data={**form, **GOOD}, allow_redirects=False)
        assert again.status == 303 and len(kube.creates) == 1

    _run(view, kube, test)


def test_bad_fields_come_back_next_to_the_field_with_the_rule(
    view: projection.Projection, kube: FakeKube
) -> None:
    async def test(client: Client) -> None:
        await _sign_in(client)
        form = await _form(client)
        bad = {**form, "name": "Kim <b>", "phone": "010-1234-5678", "address": "  ", "months": "12"}
        response = await client.post("/shop/shop/aqua-300", data=bad)
        assert response.status == 422
        page = await response.text()
        assert 'role="alert"' in page
        assert re.search(
            r'<p class="error" id="phone-error">Enter a mobile number in international form', page
        )
        assert 'id="phone" name="phone"' in page and 'aria-describedby="phone-hint phone-error"' in page
        assert 'id="address-error"' in page and 'id="months-error"' in page
        assert 'id="name-error"' not in page
        assert 'value="Kim &lt;b&gt;"' in page  # what was entered comes back, escaped
        assert _hidden(page, "application") == form["application"]  # the same application
        assert kube.creates == []

    _run(view, kube, test)


def test_the_api_servers_422_lands_next_to_its_field(view: projection.Projection, kube: FakeKube) -> None:
    kube.refuse = Refusal(
        422,
        {
            "kind": "Status",
            "message": 'Rental.rental.purifier.io "r-x" is invalid: spec.customer.phone: Invalid value',
            "details": {"causes": [{"field": "spec.customer.phone", "message": "should match '^\\\\+'"}]},
        },
    )

    async def test(client: Client) -> None:
        await _sign_in(client)
        form = await _form(client)
        response = await client.post("/shop/shop/aqua-300", data={**form, **GOOD})
        assert response.status == 422
        page = await response.text()
        assert re.search(r'id="phone-error">Enter a mobile number', page)
        assert 'value="+821012345678"' in page

    _run(view, kube, test)


def test_without_write_permission_a_post_is_503(view: projection.Projection, kube: FakeKube) -> None:
    kube.refuse = Refusal(403, {"kind": "Status", "message": "forbidden", "reason": "Forbidden"})

    async def test(client: Client) -> None:
        await _sign_in(client)
        response = await client.post("/shop/shop/aqua-300", data={**(await _form(client)), **GOOD})
        assert response.status == 503
        assert "not possible at the moment" in await response.text()

    _run(view, kube, test)


def test_without_a_client_a_post_is_503_and_nothing_is_sent(view: projection.Projection) -> None:
    async def test(client: Client) -> None:
        await _sign_in(client)
        response = await client.post("/shop/shop/aqua-300", data={**(await _form(client)), **GOOD})
        assert response.status == 503

    _run(view, None, test)


def test_a_fourth_open_application_is_429(
    view: projection.Projection, kube: FakeKube, rental_body: RentalFactory
) -> None:
    for index, phase in enumerate((None, "AwaitingPayment", "PaymentDeferred")):
        view.apply("Rental", None, rental_body(f"open-{index}", customer="cust-1", phase=phase))
    view.apply("Rental", None, rental_body("open-x", customer="cust-2", phase=None))

    async def test(client: Client) -> None:
        await _sign_in(client)
        response = await client.post("/shop/shop/aqua-300", data={**(await _form(client)), **GOOD})
        assert response.status == 429
        assert "You have 3 applications still being processed (at most 3)" in await response.text()
        assert kube.creates == []
        # Another customer with one open application may still apply.
        await _sign_in(client, "cust-2")
        response = await client.post(
            "/shop/shop/aqua-300", data={**(await _form(client)), **GOOD}, allow_redirects=False
        )
        assert response.status == 303

    _run(view, kube, test)


# --- CSRF --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "headers"),
    [
        ({"csrf": None}, {}),
        ({"csrf": "n.9999999999.forged"}, {}),
        ({}, {"Origin": "https://evil.example"}),
        ({}, {"Origin": "null"}),
        ({}, {"Referer": "https://evil.example/page"}),
    ],
)
def test_a_post_without_a_valid_csrf_token_or_from_elsewhere_is_403(
    view: projection.Projection, kube: FakeKube, change: dict[str, str | None], headers: dict[str, str]
) -> None:
    async def test(client: Client) -> None:
        await _sign_in(client)
        data = {**(await _form(client)), **GOOD, **change}
        data = {key: value for key, value in data.items() if value is not None}
        response = await client.post("/shop/shop/aqua-300", data=data, headers=headers)
        assert response.status == 403
        cancel = await client.post(
            "/mypage/cust-1/rentals/shop/mine/cancel",
            data={key: value for key, value in change.items() if value is not None},
            headers=headers,
        )
        assert cancel.status == 403
        assert kube.creates == [] and kube.patches == []

    _run(view, kube, test)


def test_another_customers_csrf_token_is_refused(view: projection.Projection, kube: FakeKube) -> None:
    async def test(client: Client) -> None:
        await _sign_in(client, "cust-2")
        form = await _form(client)
        await _sign_in(client, "cust-1")
        response = await client.post("/shop/shop/aqua-300", data={**form, **GOOD})
        assert response.status == 403
        assert kube.creates == []

    _run(view, kube, test)


def test_posting_without_signing_in_is_401(view: projection.Projection, kube: FakeKube) -> None:
    async def test(client: Client) -> None:
        response = await client.post("/shop/shop/aqua-300", data=GOOD)
        assert response.status == 401
        assert kube.creates == []

    _run(view, kube, test)


# --- cancelling --------------------------------------------------------------------------------------
def _store(kube: FakeKube, name: str, customer: str) -> None:
    kube.rentals[("shop", name)] = {
        "metadata": {"namespace": "shop", "name": name, "uid": f"uid-{name}"},
        "spec": {"purifier": "aqua-300", "customer": {"id": customer}, "months": 12},
    }


def test_cancel_shows_what_it_costs_then_sets_cancelled(
    view: projection.Projection, kube: FakeKube, rental_body: RentalFactory, billing_body: Callable[..., Any]
) -> None:
    # Past the withdrawal window (2026-11-15), 3 of 12 mandatory months paid: 10% of 9 x 30,000.
    view.apply("Rental", None, rental_body("mine", customer="cust-1", version=20, billing=billing_body()))
    _store(kube, "mine", "cust-1")

    async def test(client: Client) -> None:
        await _sign_in(client)
        mypage = await (await client.get("/mypage/cust-1")).text()
        assert 'href="/mypage/cust-1/rentals/shop/mine/cancel"' in mypage
        assert 'href="/mypage/cust-1/rentals/shop/theirs/cancel"' not in mypage
        assert '<script src="/static/mypage.js" defer></script>' in mypage
        page = await (await client.get("/mypage/cust-1/rentals/shop/mine/cancel")).text()
        assert "early-termination fee of 27,000 KRW" in page
        response = await client.post(
            "/mypage/cust-1/rentals/shop/mine/cancel",
            data={"csrf": _hidden(page, "csrf")},
            allow_redirects=False,
        )
        assert response.status == 303 and response.headers["Location"] == "/mypage/cust-1"
        assert kube.patches == [("mine", {"metadata": {"uid": "uid-mine"}, "spec": {"cancelled": True}})]

    _run(view, kube, test)


def test_another_customers_cancel_is_403_and_nothing_is_written(
    view: projection.Projection, kube: FakeKube
) -> None:
    _store(kube, "theirs", "cust-2")

    async def test(client: Client) -> None:
        await _sign_in(client)
        # Their rental under my customer path, and my path for their customer id.
        assert (await client.get("/mypage/cust-1/rentals/shop/theirs/cancel")).status == 403
        assert (await client.get("/mypage/cust-2/rentals/shop/theirs/cancel")).status == 403
        form = await _form(client)
        for path in (
            "/mypage/cust-1/rentals/shop/theirs/cancel",
            "/mypage/cust-2/rentals/shop/theirs/cancel",
        ):
            response = await client.post(path, data={"csrf": form["csrf"]})
            assert response.status == 403
        assert kube.patches == []
        assert (await client.get("/mypage/cust-1/rentals/shop/nothing/cancel")).status == 404

    _run(view, kube, test)


def test_the_object_itself_decides_whose_it_is(view: projection.Projection, kube: FakeKube) -> None:
    # The projection says cust-1's, the API server says otherwise (it moved meanwhile): refused.
    _store(kube, "mine", "cust-9")

    async def test(client: Client) -> None:
        await _sign_in(client)
        form = await _form(client)
        response = await client.post("/mypage/cust-1/rentals/shop/mine/cancel", data={"csrf": form["csrf"]})
        assert response.status == 403
        assert kube.patches == []

    _run(view, kube, test)


def test_header_mode_identity_is_the_header(view: projection.Projection, kube: FakeKube) -> None:
    async def test(client: Client) -> None:
        who = {"X-Customer-Id": "cust-1"}
        signin = await client.get("/signin", allow_redirects=False, headers=who)
        assert signin.status == 303 and sessions.COOKIE not in signin.cookies
        page = await (await client.get("/shop/shop/aqua-300", headers=who)).text()
        data = {"csrf": _hidden(page, "csrf"), "application": _hidden(page, "application"), **GOOD}
        response = await client.post("/shop/shop/aqua-300", data=data, headers=who, allow_redirects=False)
        assert response.status == 303
        [created] = kube.rentals.values()
        assert created["spec"]["customer"]["id"] == "cust-1"
        twice = await client.get(
            "/shop/shop/aqua-300", headers=[("X-Customer-Id", "cust-1"), ("X-Customer-Id", "cust-2")]
        )
        assert twice.status == 400

    _run(view, kube, test, mode="header")


def test_the_live_section_lists_phases_and_cancel_links(view: projection.Projection) -> None:
    rentals = view.rentals_of("cust-1")
    section = shop_pages.live_section("cust-1", rentals)
    assert 'data-rental="shop/mine"' in section and 'data-phase="Confirmed"' in section
    assert 'aria-live="polite"' in section
    assert "Cancel" in section


def test_pages_are_korean_by_default_and_english_when_asked(view: projection.Projection) -> None:
    app = server.make_app(view, auth.Policy(mode="token", secret=SECRET))

    async def main() -> None:
        async with test_utils.TestClient(test_utils.TestServer(app)) as client:
            korean = await client.get("/shop")
            assert korean.headers["Content-Language"] == "ko"
            assert "Accept-Language" in korean.headers["Vary"]
            page = await korean.text()
            assert '<html lang="ko">' in page and "30,000원" in page
            english = await client.get("/shop", headers={"Accept-Language": "en-US,en;q=0.9"})
            assert english.headers["Content-Language"] == "en"
            assert "30,000 KRW a month" in await english.text()
            refused = await client.post("/shop/shop/aqua-300", data={})
            assert refused.status == 401 and '<html lang="ko">' in await refused.text()

    asyncio.run(main())


def test_a_field_rule_in_korean(view: projection.Projection) -> None:
    purifier = view.purifier("shop", "aqua-300")
    assert purifier is not None
    _, english = shop.validate(purifier, "cust-1", {**GOOD, "phone": "010"}, "en")
    _, korean = shop.validate(purifier, "cust-1", {**GOOD, "phone": "010"}, "ko")
    assert set(english) == set(korean) == {"phone"}
    assert english["phone"].startswith("Enter a mobile number")
    assert korean["phone"] != english["phone"] and "+821012345678" in korean["phone"]
