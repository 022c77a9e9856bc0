"""MyPage in a real browser: Debian's headless Chromium, driven by Playwright, reads a customer's page.

Playwright's Python package drives the system Chromium (`executable_path`); it never downloads a
browser of its own. Missing Chromium or Playwright fails these tests rather than skipping them: CI
must install both (scripts/setup). Screenshots land in artifacts/ (gitignored) for a person to look at,
and axe-core checks each page photographed (conftest's `axe`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rental_devenv import testkit
from rental_gateway import testing

from .conftest import Axe, OperatorFactory

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
# What works on these machines (closed network, root, no GPU): see the machine notes.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/setup installs it)")
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415
    except ImportError:
        pytest.fail("the playwright package is missing: pip install playwright (never `playwright install`)")
    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh, empty profile (its own --user-data-dir).
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def test_the_page_shows_a_rental_and_its_change_after_a_reload(
    browser: Any,
    cluster: testkit.Cluster,
    gateway: testing.GatewayProcess,
    operator_factory: OperatorFactory,
    axe: Axe,
) -> None:
    operator = operator_factory(gateway)
    cluster.create(testkit.purifier("aquapure-300", stock=2, fee=39_000))
    cluster.create(testkit.rental("kim-aquapure", "aquapure-300", customer="kim-minjun", months=24))

    def delivered() -> bool:
        rental = operator.mypage.rental("kim-minjun", "kim-aquapure")
        return bool(rental and rental["delivery"]["phase"] == "Delivered")

    testkit.wait_for(delivered, timeout=60, what="the rental delivered")
    tracking = (cluster.get("rentals", "kim-aquapure") or {})["status"]["delivery"]["trackingNumber"]

    # A phone-sized window: the page must read well there.
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    page = context.new_page()
    try:
        response = page.goto(operator.mypage.page_link("kim-minjun"))
        assert response is not None and response.status == 200
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.get_by_role("heading", level=1).inner_text() == "My rentals"
        article = page.get_by_role("article", name="Model aquapure-300")
        assert article.count() == 1
        details = article.locator("dl").inner_text()
        assert "Confirmed" in details
        # The latest period's charge, one month's fee, and the contract it belongs to.
        assert "Approved" in details and "39,000 KRW" in details
        assert "1 of 24 months paid" in details
        assert "If you cancel now: full refund of 39,000 KRW" in article.inner_text()
        assert "Delivered" in details
        assert tracking in details
        history = article.get_by_role("listitem").all_inner_texts()
        assert any("Delivery Delivered" in item for item in history), history
        axe.shoot(page, "mypage-confirmed")

        cluster.patch("rentals", "kim-aquapure", {"spec": {"cancelled": True}})
        testkit.wait_for(
            lambda: (operator.mypage.rental("kim-minjun", "kim-aquapure") or {}).get("phase") == "Cancelled",
            timeout=60,
            what="the cancellation in MyPage",
        )
        page.reload()
        details = article.locator("dl").inner_text()
        assert "Cancelled" in details and "Refunded" in details and "Returned" in details
        history = article.get_by_role("listitem").all_inner_texts()
        assert any("Rental Cancelled" in item for item in history), history
        axe.shoot(page, "mypage-cancelled")
    finally:
        context.close()


def test_a_link_for_another_customer_shows_no_rentals_of_theirs(
    browser: Any,
    cluster: testkit.Cluster,
    gateway: testing.GatewayProcess,
    operator_factory: OperatorFactory,
    axe: Axe,
) -> None:
    operator = operator_factory(gateway)
    cluster.create(testkit.purifier("aquapure-300", stock=1))
    cluster.create(testkit.rental("lee-aquapure", "aquapure-300", customer="lee"))
    testkit.wait_for(lambda: operator.mypage.rental("lee", "lee-aquapure"), timeout=30, what="lee's rental")
    context = browser.new_context()
    page = context.new_page()
    try:
        kims_token = operator.mypage.page_link("kim").rpartition("token=")[2]
        response = page.goto(f"{operator.mypage.url}/mypage/lee?token={kims_token}")
        assert response is not None and response.status == 403
        assert page.get_by_role("heading", level=1).inner_text() == "Not yours"
        assert "lee-aquapure" not in page.content()
        axe.shoot(page, "mypage-forbidden")
    finally:
        context.close()


def test_markup_that_people_wrote_is_shown_never_run(
    browser: Any,
    cluster: testkit.Cluster,
    gateway: testing.GatewayProcess,
    operator_factory: OperatorFactory,
    axe: Axe,
) -> None:
    """Hostile display names reach the page as text: no element, no script, no dialog."""
    operator = operator_factory(gateway)
    purifier = testkit.purifier("aqua", stock=1)
    purifier["spec"]["displayName"] = '<img src=x onerror="alert(1)"><script>alert(2)</script>\u202eAqua'
    cluster.create(purifier)
    cluster.create(testkit.rental("park-aqua", "aqua", customer="park"))
    testkit.wait_for(lambda: operator.mypage.rental("park", "park-aqua"), timeout=30, what="park's rental")
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []

    def dismiss(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    try:
        response = page.goto(operator.mypage.page_link("park"))
        assert response is not None and response.status == 200
        # Only the page's own script (the live update, `/static/mypage.js`); nothing from the name.
        assert page.locator('img, script:not([src="/static/mypage.js"]), iframe').count() == 0
        heading = page.get_by_role("article").get_by_role("heading", level=2).inner_text()
        assert heading == '<img src=x onerror="alert(1)"><script>alert(2)</script>Aqua'  # RLO dropped
        axe.shoot(page, "mypage-hostile")
    finally:
        context.close()
    assert dialogs == []
