"""mypage.pages: the page says everything the JSON says, for people, and escapes what users wrote."""

from __future__ import annotations

import datetime
import html
import html.parser
import re
from collections.abc import Callable
from typing import Any

import pytest

from rental_operator.api import rental as api_rental
from rental_operator.mypage import pages, projection
from rental_operator.reconcilers import notifications

RentalFactory = Callable[..., dict[str, Any]]
PurifierFactory = Callable[..., dict[str, Any]]
AS_OF = 1_800_000_000.0


class _Outline(html.parser.HTMLParser):
    """Tags, attributes and text of a page, to check its structure rather than its spelling."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def named(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def _parse(text: str) -> _Outline:
    outline = _Outline()
    outline.feed(text)
    return outline


def _view(*objects: dict[str, Any]) -> projection.Projection:
    view = projection.Projection()
    for obj in objects:
        view.apply(obj["kind"], None, obj)
    view.mark_ready()
    return view


def test_the_page_is_accessible_and_readable_on_a_phone(
    rental_body: RentalFactory, purifier_body: PurifierFactory
) -> None:
    page = pages.render(
        "cust-1", _view(purifier_body(), rental_body()).rentals_of("cust-1"), as_of=AS_OF, now=AS_OF
    )
    outline = _parse(page)
    assert page.startswith("<!doctype html>")
    assert outline.named("html") == [{"lang": "en"}]
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in outline.named("meta")
    assert len(outline.named("h1")) == 1
    assert len(outline.named("h2")) == 1  # one heading per rental
    [article] = outline.named("article")
    assert article["aria-labelledby"] == outline.named("h2")[0]["id"]
    assert outline.named("script") == []
    labels = [text for text in outline.text if text in {"Status", "Payment", "Delivery", "Tracking number"}]
    assert labels == ["Status", "Payment", "Delivery", "Tracking number"]


def test_the_page_shows_each_fact_of_the_rental(
    rental_body: RentalFactory, purifier_body: PurifierFactory
) -> None:
    page = pages.render(
        "cust-1", _view(purifier_body(), rental_body()).rentals_of("cust-1"), as_of=AS_OF, now=AS_OF
    )
    text = " ".join(_parse(page).text)
    for fact in (
        "AquaPure 300",
        "aqua-300",
        "Confirmed",
        "Approved",
        "360,000 KRW",
        "Delivered",
        "TRK-1",
        "Awaiting payment",
        "a unit is reserved; taking payment",
        "2026-11-01 10:30 UTC",
    ):
        assert fact in text, fact
    # The history is an ordered list, oldest first, with machine-readable times.
    assert len(_parse(page).named("li")) == 5
    assert {"datetime": "2026-11-01T09:00:00Z"} in _parse(page).named("time")


def test_no_rentals_says_so(rental_body: RentalFactory) -> None:
    page = pages.render("cust-9", [], as_of=AS_OF, now=AS_OF)
    assert "You have no rentals yet." in page
    assert "cust-9" in page


def test_every_user_supplied_string_is_escaped(
    rental_body: RentalFactory, purifier_body: PurifierFactory
) -> None:
    evil = '<script>alert("x")</script>&<img src=x onerror=alert(1)>'
    rental = rental_body(message=evil, tracking=evil)
    rental["status"]["history"][0]["message"] = evil
    rental["status"]["history"][1]["phase"] = evil
    view = _view(purifier_body(model=evil), rental)
    page = pages.render("cust-1", view.rentals_of("cust-1"), as_of=AS_OF, now=AS_OF)
    outline = _parse(page)
    assert outline.named("script") == []
    assert outline.named("img") == []
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    assert evil in "".join(outline.text)  # shown as text, exactly as written


def test_the_customer_id_is_escaped_too() -> None:
    page = pages.render('"><b>x</b>', [], as_of=AS_OF, now=AS_OF)
    assert _parse(page).named("b") == []


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1_076_400, "KRW", "1,076,400 KRW"),
        (1999, "USD", "19.99 USD"),
        (5, "EUR", "0.05 EUR"),
        (1234, "KWD", "1.234 KWD"),
        (-250, "USD", "-2.50 USD"),
        (None, "KRW", "\u2014"),
    ],
)
def test_amounts_are_in_major_units(amount: int | None, currency: str, shown: str) -> None:
    assert pages.format_amount(amount, currency) == shown


@pytest.mark.parametrize(
    ("amount", "currency", "figure"),
    [
        *((36_000, code, f"36,000 {code}") for code in ("XPF", "RWF", "VUV", "BIF", "DJF", "GNF", "KMF")),
        *((36_000, code, f"36,000 {code}") for code in ("UYI", "KRW", "JPY")),
        (36_000, "USD", "360.00 USD"),
        (36_000, "EUR", "360.00 EUR"),
        (36_000, "BHD", "36.000 BHD"),
        (36_000, "KWD", "36.000 KWD"),
    ],
)
def test_the_page_and_the_text_message_show_the_same_figure(
    rental_body: RentalFactory, amount: int, currency: str, figure: str
) -> None:
    body = rental_body(amount=amount, currency=currency)
    page = pages.render("cust-1", _view(body).rentals_of("cust-1"), as_of=AS_OF, now=AS_OF)
    rental = api_rental.Rental.model_validate(body)
    confirmed = next(entry for entry in rental.status.history if entry.phase == "Confirmed")
    text = notifications.text(rental, confirmed, "AquaPure 300")
    assert f"payment of {figure} received" in text
    assert f"Approved</span>, {figure}</dd>" in page


def test_phases_read_as_words() -> None:
    assert pages.humanize("AwaitingPayment") == "Awaiting payment"
    assert pages.humanize("PaymentDeferred") == "Payment deferred"
    assert pages.humanize("Confirmed") == "Confirmed"
    assert pages.humanize(None) == "\u2014"


# --- the monthly contract on the page ---------------------------------------------------------------------
BillingFactory = Callable[..., dict[str, Any]]
DAY = 86400
# The fixture contract's withdrawal window ends then.
WITHDRAWAL_ENDS = datetime.datetime(2026, 11, 15, 10, 30, tzinfo=datetime.UTC).timestamp()
LATE = {"period": 4, "since": "2027-02-01T09:00:05Z", "attempts": 2, "nextAttemptAt": "2027-02-04T09:00:03Z"}


def _page_text(body: dict[str, Any], *, now: float = WITHDRAWAL_ENDS + DAY) -> str:
    """The page's text as read aloud, for one rental at `now`: blocks apart, inline tags dropped."""
    page = pages.render("cust-1", _view(body).rentals_of("cust-1"), as_of=now, now=now)
    main = page[page.index("<main>") :]
    spaced = re.sub(r"</?(?:dt|dd|li|p|h[1-6]|ol|dl|article)\b[^>]*>", " ", main)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", spaced)).split())


def test_the_page_shows_the_contract(rental_body: RentalFactory, billing_body: BillingFactory) -> None:
    body = rental_body(billing=billing_body(), receipts=2)
    page = pages.render("cust-1", _view(body).rentals_of("cust-1"), as_of=AS_OF, now=WITHDRAWAL_ENDS + DAY)
    text = _page_text(body)
    for fact in (
        "Monthly fee 30,000 KRW",
        "Term 3 of 36 months paid",
        "Next charge 30,000 KRW on 2027-02-01",
        "Term ends 2029-11-01",
        "If you cancel now: an early-termination fee of 27,000 KRW",
        "Recent charges Month 2: 30,000 KRW, 2026-12-01 Month 3: 30,000 KRW, 2027-01-01",
        "Billing Charged — period 3 of 36 paid",
    ):
        assert fact in text, fact
    assert "overdue" not in text
    # Dates are machine-readable too.
    assert {"datetime": "2027-02-01T09:00:03Z"} in _parse(page).named("time")
    labels = {pages.TEXTS[key] for key in ("tracking", "monthly_fee", "term", "next_charge", "term_ends")}
    assert [text for text in _parse(page).text if text in labels] == [
        "Tracking number",
        "Monthly fee",
        "Term",
        "Next charge",
        "Term ends",
    ]


def test_the_page_says_what_cancelling_now_would_cost(
    rental_body: RentalFactory, billing_body: BillingFactory
) -> None:
    body = rental_body(billing=billing_body())
    assert "If you cancel now: full refund of 90,000 KRW" in _page_text(body, now=WITHDRAWAL_ENDS - 1)
    paid_up = rental_body(billing=billing_body(periodsPaid=12, paidAmount=360_000))
    assert "If you cancel now: no fee" in _page_text(paid_up, now=WITHDRAWAL_ENDS + 330 * DAY)
    done = rental_body(phase="Completed", billing=billing_body(periodsPaid=36, nextChargeAt=None))
    text = _page_text(done)
    assert "If you cancel now" not in text
    assert "Next charge none: every month of the term is paid" in text


def test_a_past_due_rental_is_warned_about_with_the_next_attempt(
    rental_body: RentalFactory, billing_body: BillingFactory
) -> None:
    text = _page_text(rental_body(phase="PastDue", billing=billing_body(pastDue=LATE)))
    assert (
        "Payment overdue: the charge for month 4 was declined (2 attempts since 2027-02-01). "
        "We will try again on 2027-02-04; please check your payment method."
    ) in text
    assert "Past due" in text  # the phase, in words
    exhausted = rental_body(phase="PastDue", billing=billing_body(pastDue={**LATE, "nextAttemptAt": None}))
    assert "No further attempts will be made." in _page_text(exhausted)


def test_a_rental_without_a_contract_shows_no_contract_lines(rental_body: RentalFactory) -> None:
    text = _page_text(rental_body())
    assert "Monthly fee" not in text and "Recent charges" not in text and "If you cancel" not in text


def test_the_contract_lines_are_escaped(rental_body: RentalFactory, billing_body: BillingFactory) -> None:
    evil = "<b>X</b>"
    body = rental_body(billing=billing_body(currency=evil), receipts=1)
    body["status"]["history"][-1]["message"] = '<img src=x onerror="alert(1)">'
    page = pages.render("cust-1", _view(body).rentals_of("cust-1"), as_of=AS_OF, now=WITHDRAWAL_ENDS + DAY)
    outline = _parse(page)
    assert outline.named("b") == [] and outline.named("img") == []
    # An unknown currency is shown upper-cased with two decimals, as the text message shows it.
    assert "300.00 &lt;B&gt;X&lt;/B&gt; on" in page
    assert "If you cancel now: an early-termination fee of 270.00 &lt;B&gt;X&lt;/B&gt;" in page


def test_every_text_is_in_the_catalog() -> None:
    # The page's words live in one place, the msgids the catalogs translate (test_pages_i18n.py: Korean).
    for key, text in pages.TEXTS.items():
        assert text.strip(), key
    assert pages.TEXTS["months_paid"].format(paid=3, total=36) == "3 of 36 months paid"
