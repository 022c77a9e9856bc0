"""The customer web app in Debian's headless Chromium (Playwright): sign in, browse, apply with a bad
field and then a good one, watch the rental move on MyPage without reloading by hand, cancel after
the preview. No Content-Security-Policy violation on the way; axe-core finds no serious or critical
violation on any page (conftest's `axe`); screenshots in artifacts/.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import pytest

from rental_devenv import testkit
from rental_gateway import testing

from .conftest import Axe, MyPageClient, MyPageFactory, OperatorFactory, token
from .test_browser import browser  # noqa: F401  # the module's Chromium, shared

pytestmark = pytest.mark.browser


def _offer(cluster: testkit.Cluster, client: MyPageClient, display_name: str) -> str:
    """A purifier (39,000 a month, 24 months mandatory) in the catalog; its page's path."""
    purifier = testkit.purifier("aquapure-300", stock=2, fee=39_000)
    purifier["spec"].update(displayName=display_name, mandatoryMonths=24)
    cluster.create(purifier)
    path = f"/shop/{cluster.namespace}/aquapure-300"
    testkit.wait_for(lambda: client.status(path) == 200, timeout=30, what="the purifier in the catalog")
    return path


def _phone(chromium: Any, locale: str) -> Any:
    """A phone-sized browser context asking for pages in `locale`."""
    return chromium.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, locale=locale)


def _apply_with_a_bad_phone_first(page: Any, cluster: testkit.Cluster, url: str, axe: Axe) -> Any:
    """Fill the form with a bad phone (refused, next to the field), correct it, land on MyPage."""
    from playwright.sync_api import expect  # noqa: PLC0415

    # A bad phone: the form comes back with the rule next to the field.
    page.get_by_label("Your name").fill("Kim Minjun")
    page.get_by_label("Mobile number").fill("010-1234-5678")
    page.get_by_label("Delivery address").fill("Seoul, Gangnam-gu, Teheran-ro 1")
    page.get_by_label("Contract term").select_option("36")
    page.get_by_role("button", name="Apply for this purifier").click()
    expect(page.get_by_role("alert")).to_contain_text("The application was not sent")
    phone = page.get_by_label("Mobile number")
    expect(phone).to_have_attribute("aria-invalid", "true")
    assert "Enter a mobile number in international form" in page.locator("#phone-error").inner_text()
    expect(page.get_by_label("Contract term")).to_have_value("36")
    axe.shoot(page, "web-form-errors")
    assert cluster.items("rentals") == []

    # Corrected: applied, and on MyPage.
    phone.fill("+82 10-1234-5678")
    page.get_by_role("button", name="Apply for this purifier").click()
    page.wait_for_url(f"{url}/mypage/kim-minjun")
    [rental] = cluster.items("rentals")
    assert rental["spec"]["customer"]["id"] == "kim-minjun" and rental["spec"]["months"] == 36
    return rental


def test_browse_apply_watch_it_delivered_and_cancel(
    browser: Any,  # noqa: F811
    cluster: testkit.Cluster,
    gateway: testing.GatewayProcess,
    operator_factory: OperatorFactory,
    axe: Axe,
) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415

    operator = operator_factory(gateway)
    url = operator.mypage.url
    path = _offer(cluster, operator.mypage, "AquaPure 300")
    context = _phone(browser, "en-US")
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security" in message.text else None,
    )
    try:
        # Sign in with the texted link, straight to the purifier.
        query = urllib.parse.urlencode({"token": token("kim-minjun"), "next": path})
        response = page.goto(f"{url}/signin?{query}")
        assert response is not None and response.status == 200
        assert page.url == url + path  # the token is no longer in the address
        assert page.get_by_role("heading", level=1).inner_text() == "AquaPure 300"
        axe.shoot(page, "web-purifier")
        page.goto(f"{url}/shop")
        axe.shoot(page, "web-catalog")
        page.goto(url + path)

        rental = _apply_with_a_bad_phone_first(page, cluster, url, axe)

        # The rental moves to Confirmed and Delivered without a reload by the test.
        live = page.locator("#live")
        expect(live.locator("[data-phase]")).to_have_attribute("data-phase", "Confirmed", timeout=60_000)
        expect(live.locator("[data-delivery]")).to_have_text("delivered", timeout=60_000)
        # The rest of the page follows too (the script swaps in the page's new content).
        tracking = testkit.wait_for(
            lambda: (
                ((cluster.get("rentals", rental["metadata"]["name"]) or {}).get("status") or {})
                .get("delivery", {})
                .get("trackingNumber")
            ),
            timeout=30,
            what="a tracking number",
        )
        expect(page.get_by_role("article")).to_contain_text(tracking, timeout=10_000)
        axe.shoot(page, "web-mypage-live")

        # Cancel: the preview, then Cancelled, again without reloading.
        page.get_by_role("link", name=re.compile("^Cancel ")).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Cancel your rental")
        expect(page.locator(".effect")).to_contain_text("Every charge is refunded: 39,000 KRW")
        axe.shoot(page, "web-cancel")
        page.get_by_role("button", name="Yes, cancel this rental").click()
        page.wait_for_url(f"{url}/mypage/kim-minjun")
        expect(live.locator("[data-phase]")).to_have_attribute("data-phase", "Cancelled", timeout=60_000)
        expect(live.get_by_role("link", name=re.compile("^Cancel "))).to_have_count(0)
        assert (cluster.get("rentals", rental["metadata"]["name"]) or {})["spec"]["cancelled"] is True
        axe.shoot(page, "web-mypage-cancelled")
        assert violations == []
    finally:
        context.close()


def test_the_pages_in_korean(
    browser: Any,  # noqa: F811
    cluster: testkit.Cluster,
    mypage_factory: MyPageFactory,
    axe: Axe,
) -> None:
    """The same pages for a Korean browser (no operator: the application stays Pending)."""
    mypage = mypage_factory()
    url = mypage.client.url
    path = _offer(cluster, mypage.client, "아쿠아퓨어 300")
    context = _phone(browser, "ko-KR")
    page = context.new_page()
    try:
        page.goto(f"{url}/signin?{urllib.parse.urlencode({'token': token('kim-minjun')})}")
        assert page.locator("html").get_attribute("lang") == "ko"
        assert "39,000원" in page.content()
        axe.shoot(page, "web-catalog-ko")
        page.goto(url + path)
        axe.shoot(page, "web-purifier-ko")
        page.locator("#phone").fill("010-1234")
        page.locator("#address").fill("서울특별시 강남구 테헤란로 1")
        page.locator("button[type=submit]").click()
        expect_error = page.locator("#phone-error")
        assert "+821012345678" in expect_error.inner_text()
        axe.shoot(page, "web-form-errors-ko")
        page.locator("#phone").fill("+821012345678")
        page.locator("button[type=submit]").click()
        page.wait_for_url(f"{url}/mypage/kim-minjun")
        axe.shoot(page, "web-mypage-ko")
        page.locator("[data-cancel]").click()
        assert page.locator("html").get_attribute("lang") == "ko"
        axe.shoot(page, "web-cancel-ko")
    finally:
        context.close()


def test_the_whole_story_in_korean(
    browser: Any,  # noqa: F811
    cluster: testkit.Cluster,
    gateway: testing.GatewayProcess,
    operator_factory: OperatorFactory,
    axe: Axe,
) -> None:
    """A Korean browser: apply, watch it delivered, cancel with the preview in Korean, Cancelled."""
    from playwright.sync_api import expect  # noqa: PLC0415

    operator = operator_factory(gateway)
    url = operator.mypage.url
    path = _offer(cluster, operator.mypage, "아쿠아퓨어 300")
    context = _phone(browser, "ko-KR")
    page = context.new_page()
    try:
        query = urllib.parse.urlencode({"token": token("kim-minjun"), "next": path})
        page.goto(f"{url}/signin?{query}")
        assert page.locator("html").get_attribute("lang") == "ko"
        page.locator("#name").fill("김민준")
        page.locator("#phone").fill("+821012345678")
        page.locator("#address").fill("서울특별시 강남구 테헤란로 1")
        page.get_by_role("button", name="이 정수기 렌탈 신청하기").click()
        page.wait_for_url(f"{url}/mypage/kim-minjun")
        [rental] = cluster.items("rentals")
        name = rental["metadata"]["name"]

        live = page.locator("#live")
        expect(live.locator("[data-phase]")).to_have_attribute("data-phase", "Confirmed", timeout=60_000)
        testkit.wait_for(
            lambda: cluster.phase("deliveries", name) == "Delivered", timeout=60, what="delivered"
        )
        expect(live.locator("[data-delivery]")).to_have_text("배송 완료", timeout=30_000)
        axe.shoot(page, "web-mypage-live-ko")

        page.locator("[data-cancel]").first.click()
        expect(page.locator(".effect")).to_contain_text("39,000원 전액을 환불해 드립니다")
        page.get_by_role("button", name="네, 렌탈을 취소합니다").click()
        page.wait_for_url(f"{url}/mypage/kim-minjun")
        expect(live.locator("[data-phase]")).to_have_attribute("data-phase", "Cancelled", timeout=60_000)
        axe.shoot(page, "web-mypage-cancelled-ko")
        assert (cluster.get("rentals", name) or {})["spec"]["cancelled"] is True
    finally:
        context.close()
