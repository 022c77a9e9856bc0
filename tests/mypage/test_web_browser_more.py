"""The customer web app's refusals and repeats in Debian's headless Chromium (Playwright), issue 15:
a double submit makes one Rental; another customer's cancel is a 403 page and nothing changes; a POST
whose CSRF field was removed is refused; a 4th open application is refused with the 429 page. Also
MyPage with rentals in several phases. Every page in English and Korean is checked by axe-core
(conftest's `axe`) and photographed into artifacts/ on a phone-sized screen.

The apply and cancel scenarios run against the operator (MyPage inside it) and the reference gateway;
the open-applications limit and the phases page run `rental-operator mypage` alone, so that nothing
moves the rentals on while the test looks at them (no operator: applications stay Pending, and
statuses written through the status subresource stay as written).
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from typing import Any

import pytest

from rental_devenv import testkit
from rental_gateway import testing

from .conftest import Axe, MyPageClient, MyPageFactory, OperatorFactory, token
from .test_browser import browser  # noqa: F401  # the module's Chromium, shared
from .test_contract import CLOSED, OPEN, _billing, _status, _write_status

pytestmark = pytest.mark.browser

LANGUAGES = {"en": "en-US", "ko": "ko-KR"}


def _offer(cluster: testkit.Cluster, url: str, *, stock: int = 5) -> str:
    """A purifier in the catalog (39,000 a month, 12 months mandatory); its page's path."""
    purifier = testkit.purifier("aquapure-300", stock=stock, fee=39_000)
    purifier["spec"].update(displayName="AquaPure 300", mandatoryMonths=12)
    cluster.create(purifier)
    path = f"/shop/{cluster.namespace}/aquapure-300"
    client = MyPageClient(url)
    testkit.wait_for(lambda: client.status(path) == 200, timeout=30, what="the purifier in the catalog")
    return path


def _signed_in(chromium: Any, url: str, customer: str, language: str = "en") -> tuple[Any, Any]:
    """A phone-sized context (in `language`) signed in as `customer`, and its page."""
    context = chromium.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, locale=LANGUAGES[language]
    )
    page = context.new_page()
    response = page.goto(f"{url}/signin?{urllib.parse.urlencode({'token': token(customer)})}")
    assert response is not None and response.status == 200
    return context, page


def _fill(page: Any) -> None:
    """A valid application (by the fields' ids: the same in both languages)."""
    page.locator("#name").fill("Kim Minjun")
    page.locator("#phone").fill("+82 10-1234-5678")
    page.locator("#address").fill("서울특별시 강남구 테헤란로 1")


def _apply(page: Any, url: str, path: str, customer: str = "kim-minjun") -> None:
    """A new form, filled and sent: on MyPage afterwards."""
    page.goto(url + path)
    _fill(page)
    page.locator("form[method=post] button[type=submit]").click()
    page.wait_for_url(f"{url}/mypage/{customer}")


def test_a_double_submit_makes_one_rental(
    browser: Any,  # noqa: F811
    cluster: testkit.Cluster,
    gateway: testing.GatewayProcess,
    operator_factory: OperatorFactory,
) -> None:
    """A lost answer and a reload of the POST; Apply clicked twice quickly; the form sent once more."""
    url = operator_factory(gateway).mypage.url
    path = _offer(cluster, url)
    context, page = _signed_in(browser, url, "kim-minjun")
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)

    def names() -> list[str]:
        return sorted(rental["metadata"]["name"] for rental in cluster.items("rentals"))

    def lose_the_answer(route: Any) -> None:
        route.fetch(max_redirects=0)  # the server gets the application and answers 303...
        route.abort("connectionreset")  # ...which never reaches the browser

    try:
        # The answer is lost: the browser shows an error; the customer reloads, which sends the
        # same POST again. MyPage, one Rental.
        page.goto(url + path)
        _fill(page)
        page.route(url + path, lose_the_answer)
        page.get_by_role("button", name="Apply for this purifier").click()
        [first] = testkit.wait_for(names, timeout=30, what="the application created")
        page.unroute(url + path)
        page.reload()
        page.wait_for_url(f"{url}/mypage/kim-minjun")
        assert len(posts) == 2 and names() == [first]

        # A new form (a new application), Apply clicked twice quickly, then the same form sent once
        # more with the context's cookie (a retry from a script): one more Rental, not two or three.
        page.goto(url + path)
        _fill(page)
        form = page.evaluate(
            "() => Object.fromEntries(new FormData(document.querySelector('form[method=post]')))"
        )
        clicked = len(posts)
        page.get_by_role("button", name="Apply for this purifier").dblclick()
        page.wait_for_url(f"{url}/mypage/kim-minjun")
        clicked = len(posts) - clicked
        again = context.request.post(url + path, form=form, headers={"Origin": url}, max_redirects=0)
        assert again.status == 303 and again.headers["location"] == "/mypage/kim-minjun"
        assert len(names()) == 2 and first in names()
        assert all(r["spec"]["customer"]["id"] == "kim-minjun" for r in cluster.items("rentals"))
        print(f"double submit: a lost POST reloaded: 2 POSTs; double click: {clicked} POST(s); 1 Rental each")
    finally:
        context.close()


def test_another_customers_cancel_is_refused_and_nothing_changes(
    browser: Any,  # noqa: F811
    cluster: testkit.Cluster,
    gateway: testing.GatewayProcess,
    operator_factory: OperatorFactory,
    axe: Axe,
) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415

    url = operator_factory(gateway).mypage.url
    path = _offer(cluster, url)
    kim, kims_page = _signed_in(browser, url, "kim-minjun")
    try:
        _apply(kims_page, url, path)
        [rental] = cluster.items("rentals")
        name = rental["metadata"]["name"]
        cancel_path = f"/mypage/kim-minjun/rentals/{cluster.namespace}/{name}/cancel"
        # The live section shows it (mypage.js), with its Cancel link.
        expect(kims_page.locator(f'a[href="{cancel_path}"]')).to_have_count(1, timeout=30_000)
        for language in LANGUAGES:
            lee, lees_page = _signed_in(browser, url, "lee", language)
            try:
                # Kim's cancel page, as Lee: 403.
                response = lees_page.goto(url + cancel_path)
                assert response is not None and response.status == 403
                assert lees_page.locator("html").get_attribute("lang") == language
                words = (
                    "This rental belongs to another customer."
                    if language == "en"
                    else "다른 고객님의 렌탈입니다."
                )
                assert words in lees_page.locator("main").inner_text()
                assert lees_page.locator("form[method=post] button.danger").count() == 0
                axe.shoot(lees_page, f"web-forbidden-{language}")

                # A same-site form Lee builds with his own genuine CSRF token, posted at Kim's cancel:
                # still 403 (the rental is not his), in his path and in Kim's.
                lees_page.goto(url + path)
                csrf = lees_page.locator("input[name=csrf]").get_attribute("value")
                for target in (cancel_path, cancel_path.replace("/mypage/kim-minjun/", "/mypage/lee/")):
                    status = _post_from_page(lees_page, url + target, {"csrf": csrf})
                    assert status == 403, target
            finally:
                lee.close()
        assert not (cluster.get("rentals", name) or {})["spec"].get("cancelled")
        kims_page.reload()
        assert kims_page.locator(f'a[href="{cancel_path}"]').count() == 1
    finally:
        kim.close()


def _post_from_page(page: Any, action: str, fields: dict[str, str]) -> int:
    """Submit a form built in the page (same origin, as a browser sends it); the answer's status."""
    with page.expect_navigation() as navigation:
        page.evaluate(
            """([action, fields]) => {
                const form = document.createElement("form");
                form.method = "post";
                form.action = action;
                for (const [name, value] of Object.entries(fields)) {
                    const input = document.createElement("input");
                    input.type = "hidden"; input.name = name; input.value = value;
                    form.append(input);
                }
                document.body.append(form);
                form.submit();
            }""",
            [action, fields],
        )
    response = navigation.value
    return int(response.status) if response is not None else 0


def test_a_post_without_its_csrf_field_is_refused(
    browser: Any,  # noqa: F811
    cluster: testkit.Cluster,
    gateway: testing.GatewayProcess,
    operator_factory: OperatorFactory,
    axe: Axe,
) -> None:
    """The hidden csrf input removed from the page before submitting: 403, nothing written."""
    url = operator_factory(gateway).mypage.url
    path = _offer(cluster, url)
    context, page = _signed_in(browser, url, "kim-minjun")
    try:
        # Applying without it: refused, no Rental.
        page.goto(url + path)
        _fill(page)
        page.evaluate("() => document.querySelector('input[name=csrf]').remove()")
        with page.expect_navigation() as navigation:
            page.get_by_role("button", name="Apply for this purifier").click()
        assert navigation.value is not None and navigation.value.status == 403
        assert page.get_by_role("heading", level=1).inner_text() == "Not allowed"
        axe.shoot(page, "web-csrf-refused-en")
        assert cluster.items("rentals") == []

        # Applied properly, then cancelling without it: refused, not cancelled.
        _apply(page, url, path)
        [rental] = cluster.items("rentals")
        name = rental["metadata"]["name"]
        page.goto(f"{url}/mypage/kim-minjun/rentals/{cluster.namespace}/{name}/cancel")
        page.evaluate("() => document.querySelector('input[name=csrf]').remove()")
        with page.expect_navigation() as navigation:
            page.get_by_role("button", name="Yes, cancel this rental").click()
        assert navigation.value is not None and navigation.value.status == 403
        assert "This page expired or was not sent from this site" in page.locator("main").inner_text()
        assert not (cluster.get("rentals", name) or {})["spec"].get("cancelled")
    finally:
        context.close()


def test_a_fourth_open_application_is_refused(
    browser: Any,  # noqa: F811
    cluster: testkit.Cluster,
    mypage_factory: MyPageFactory,
    axe: Axe,
) -> None:
    """Three applications stay Pending (no operator); the 4th gets the 429 page, in either language."""
    mypage = mypage_factory()  # the default limit: 3
    url = mypage.client.url
    path = _offer(cluster, url)
    context, page = _signed_in(browser, url, "kim-minjun")

    def seen(count: int) -> bool:
        return len(mypage.client.rentals("kim-minjun")["rentals"]) >= count

    try:
        for count in (1, 2, 3):
            _apply(page, url, path)
            testkit.wait_for(
                functools.partial(seen, count), timeout=30, what=f"application {count} in MyPage"
            )
        axe.shoot(page, "web-mypage-three-pending-en")
        for language in LANGUAGES:
            other, other_page = _signed_in(browser, url, "kim-minjun", language)
            try:
                other_page.goto(url + path)
                _fill(other_page)
                with other_page.expect_navigation() as navigation:
                    other_page.locator("form[method=post] button[type=submit]").click()
                assert navigation.value is not None and navigation.value.status == 429
                text = other_page.locator("main").inner_text()
                if language == "en":
                    assert (
                        other_page.get_by_role("heading", level=1).inner_text()
                        == "Too many open applications"
                    )
                    assert "You have 3 applications still being processed (at most 3)" in text
                else:
                    assert (
                        other_page.get_by_role("heading", level=1).inner_text()
                        == "처리 중인 신청이 너무 많습니다"
                    )
                    assert re.search(r"3\D.*3", text), text
                axe.shoot(other_page, f"web-too-many-{language}")
            finally:
                other.close()
        assert len(cluster.items("rentals")) == 3
    finally:
        context.close()


def test_mypage_with_rentals_in_several_phases(
    browser: Any,  # noqa: F811
    cluster: testkit.Cluster,
    mypage_factory: MyPageFactory,
    axe: Axe,
) -> None:
    """Pending, Confirmed (withdrawal open), past due, completed and cancelled, side by side."""
    cluster.create(testkit.purifier("aqua", stock=5))
    names = ("kim-pending", "kim-confirmed", "kim-behind", "kim-done", "kim-cancelled")
    for name in names:
        cluster.create(testkit.rental(name, "aqua", customer="kim", months=36))
    _write_status(cluster, "kim-confirmed", _status("Confirmed", _billing(OPEN)))
    past_due = {"period": 4, "since": "2020-04-01T09:00:05Z", "attempts": 2, "nextAttemptAt": OPEN}
    _write_status(cluster, "kim-behind", _status("PastDue", _billing(CLOSED, pastDue=past_due)))
    done = _billing(CLOSED, periodsPaid=36, paidAmount=1_080_000, nextChargeAt=None)
    _write_status(cluster, "kim-done", _status("Completed", done))
    _write_status(cluster, "kim-cancelled", _status("Cancelled", _billing(CLOSED)))
    mypage = mypage_factory()
    url = mypage.client.url
    testkit.wait_for(
        lambda: len(mypage.client.rentals("kim")["rentals"]) == len(names), timeout=30, what="five rentals"
    )
    for language in LANGUAGES:
        context, page = _signed_in(browser, url, "kim", language)
        try:
            page.goto(f"{url}/mypage/kim")
            assert page.locator("html").get_attribute("lang") == language
            assert page.locator("main article").count() == len(names)
            phases = page.locator("#live [data-phase]").evaluate_all(
                "(nodes) => nodes.map((n) => n.dataset.phase)"
            )
            assert sorted(phases) == sorted(["Pending", "Confirmed", "PastDue", "Completed", "Cancelled"])
            axe.shoot(page, f"web-mypage-phases-{language}")
            # The cancel page of the past-due rental (a termination after the window: the fee).
            page.goto(f"{url}/mypage/kim/rentals/{cluster.namespace}/kim-behind/cancel")
            axe.shoot(page, f"web-cancel-fee-{language}")
        finally:
            context.close()
