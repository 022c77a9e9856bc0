"""mypage.pages in Korean: the page in the language the browser asks for, Korean words, won and dates.

The server negotiates `Accept-Language` (Korean unless English is preferred); the page says `lang`,
its labels and sentences come from the Korean catalog, amounts read `30,000원` and dates
`2027년 2월 1일` in Korea's time. User-written values are escaped the same in every language.
"""

from __future__ import annotations

import asyncio
import datetime
import html
import html.parser
import re
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import test_utils

from rental_operator import i18n
from rental_operator.mypage import auth, pages, projection, server, shop_pages

RentalFactory = Callable[..., dict[str, Any]]
PurifierFactory = Callable[..., dict[str, Any]]
BillingFactory = Callable[..., dict[str, Any]]
AS_OF = 1_800_000_000.0
DAY = 86400
WITHDRAWAL_ENDS = datetime.datetime(2026, 11, 15, 10, 30, tzinfo=datetime.UTC).timestamp()


def _view(*objects: dict[str, Any]) -> projection.Projection:
    view = projection.Projection()
    for obj in objects:
        view.apply(obj["kind"], None, obj)
    view.mark_ready()
    return view


def _text(page: str) -> str:
    """The page's text as read aloud: blocks apart, inline tags dropped."""
    main = page[page.index("<main>") :]
    spaced = re.sub(r"</?(?:dt|dd|li|p|h[1-6]|ol|dl|article)\b[^>]*>", " ", main)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", spaced)).split())


def _korean(*objects: dict[str, Any], now: float = WITHDRAWAL_ENDS + DAY) -> str:
    return pages.render("cust-1", _view(*objects).rentals_of("cust-1"), as_of=now, now=now, language="ko")


class _Html(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_korean_page_says_its_language_and_reads_in_korean(
    rental_body: RentalFactory, purifier_body: PurifierFactory
) -> None:
    page = _korean(purifier_body(), rental_body())
    parsed = _Html()
    parsed.feed(page)
    assert [attrs for tag, attrs in parsed.tags if tag == "html"] == [{"lang": "ko"}]
    text = _text(page)
    for fact in (
        "나의 렌탈 현황",
        "cust-1 고객님의 렌탈: 1건.",
        "상태 렌탈 확정",
        "정수기 AquaPure 300 (aqua-300)",
        "결제 결제 완료, 360,000원",
        "배송 배송 완료",
        "운송장 번호 TRK-1",
        "진행 내역",
        "2026년 11월 1일 오후 7:30",  # 10:30 UTC is 19:30 in Seoul
        "결제 대기",
    ):
        assert fact in text, (fact, text)
    assert "<title>나의 렌탈 현황 \u2014 cust-1</title>" in page
    for english in ("My rentals", "Status", "Tracking number", "KRW", "UTC"):
        assert english not in text, english


def test_no_rentals_in_korean() -> None:
    text = _text(pages.render("cust-9", [], as_of=AS_OF, now=AS_OF, language="ko"))
    assert "cust-9 고객님의 렌탈: 없음." in text
    assert "아직 이용 중인 렌탈이 없습니다." in text


def test_the_contract_in_korean(rental_body: RentalFactory, billing_body: BillingFactory) -> None:
    text = _text(_korean(rental_body(billing=billing_body(), receipts=2)))
    for fact in (
        "월 렌탈료 30,000원",
        "계약 기간 36개월 중 3개월 납부",
        "다음 결제 2027년 2월 1일 30,000원",
        "계약 만료일 2029년 11월 1일",
        "지금 해지하시면 위약금(27,000원)이 청구됩니다.",
        "최근 결제 내역 2회차: 30,000원, 2026년 12월 1일 3회차: 30,000원, 2027년 1월 1일",
        "렌탈료 결제 완료",
    ):
        assert fact in text, (fact, text)


def test_what_cancelling_would_do_in_korean(rental_body: RentalFactory, billing_body: BillingFactory) -> None:
    withdrawal = _text(_korean(rental_body(billing=billing_body()), now=WITHDRAWAL_ENDS - 1))
    assert "지금 취소하시면 청약철회로 납부하신 90,000원 전액을 환불해 드립니다." in withdrawal
    paid_up = rental_body(billing=billing_body(periodsPaid=12, paidAmount=360_000))
    assert "지금 해지하셔도 위약금은 없습니다." in _text(_korean(paid_up, now=WITHDRAWAL_ENDS + 330 * DAY))
    done = rental_body(phase="Completed", billing=billing_body(periodsPaid=36, nextChargeAt=None))
    assert "다음 결제 없음 (계약 기간의 렌탈료를 모두 납부하셨습니다)" in _text(_korean(done))


def test_a_past_due_rental_in_korean(rental_body: RentalFactory, billing_body: BillingFactory) -> None:
    late = {
        "period": 4,
        "since": "2027-02-01T09:00:05Z",
        "attempts": 2,
        "nextAttemptAt": "2027-02-04T09:00:03Z",
    }
    text = _text(_korean(rental_body(phase="PastDue", billing=billing_body(pastDue=late))))
    assert (
        "렌탈료가 연체되었습니다. 4회차 결제가 승인되지 않았습니다(2027년 2월 1일부터 2회 시도). "
        "2027년 2월 4일에 결제를 다시 시도합니다. 등록하신 결제 수단을 확인해 주세요."
    ) in text
    assert "상태 연체" in text
    final = _text(
        _korean(rental_body(phase="PastDue", billing=billing_body(pastDue={**late, "nextAttemptAt": None})))
    )
    assert "더 이상 결제를 시도하지 않습니다." in final


def test_user_values_are_escaped_in_korean_too(
    rental_body: RentalFactory, purifier_body: PurifierFactory
) -> None:
    evil = '<script>alert("x")</script>'
    page = _korean(purifier_body(model=evil), rental_body(message=evil, tracking=evil))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


@pytest.mark.parametrize(
    ("phase", "word"),
    [
        ("AwaitingPayment", "결제 대기"),
        ("PaymentDeferred", "결제 보류"),
        ("Confirmed", "렌탈 확정"),
        ("PastDue", "연체"),
        ("Cancelling", "해지 처리 중"),
        ("Completed", "계약 완료"),
        ("Shipping", "배송 중"),
        ("Returned", "반납 완료"),
        ("Refunded", "환불 완료"),
        ("ChargeDeclined", "결제 실패"),
        ("Paused", "Paused"),  # a phase the page does not know stays as written
        (None, "\u2014"),
    ],
)
def test_phases_in_korean(phase: str | None, word: str) -> None:
    assert pages.humanize(phase, "ko") == word


def test_english_is_unchanged_when_asked_for(
    rental_body: RentalFactory, billing_body: BillingFactory
) -> None:
    body = rental_body(billing=billing_body())
    now = WITHDRAWAL_ENDS + DAY
    page = pages.render("cust-1", _view(body).rentals_of("cust-1"), as_of=now, now=now, language="en")
    assert '<html lang="en">' in page
    assert "Monthly fee 30,000 KRW" in _text(page)
    assert "Next charge 30,000 KRW on 2027-02-01" in _text(page)


# --- the server: the page in the language the browser asks for ----------------------------------------------
@pytest.mark.parametrize(
    ("accept_language", "lang", "heading"),
    [
        ("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7", "ko", "나의 렌탈 현황"),
        ("en-US,en;q=0.9", "en", "My rentals"),
        ("en-GB,en;q=0.9,ko;q=0.8", "en", "My rentals"),
        ("fr-FR,fr;q=0.9", "ko", "나의 렌탈 현황"),
        (None, "ko", "나의 렌탈 현황"),
    ],
)
def test_the_server_answers_in_the_negotiated_language(
    rental_body: RentalFactory,
    purifier_body: PurifierFactory,
    accept_language: str | None,
    lang: str,
    heading: str,
) -> None:
    app = server.make_app(_view(purifier_body(), rental_body()), auth.Policy(mode="none"))
    headers = {"Accept-Language": accept_language} if accept_language else {}

    async def main() -> None:
        async with test_utils.TestClient(test_utils.TestServer(app)) as client:
            answer = await client.get("/mypage/cust-1", headers=headers)
            assert answer.status == 200
            page = await answer.text()
            assert f'<html lang="{lang}">' in page
            assert f"<h1>{heading}</h1>" in page
            assert answer.headers["Content-Language"] == lang
            assert "Accept-Language" in answer.headers["Vary"]  # caches keep one copy per language

    asyncio.run(main())


def test_the_catalog_has_every_page_text() -> None:
    korean = i18n.messages("ko")
    for key, msgid in pages.TEXTS.items():
        assert korean.gettext(msgid) != msgid or msgid == "{amount}, {date}", key


# --- the web app's pages (mypage/shop_pages.py) in Korean ------------------------------------------------
def _purifier(purifier_body: PurifierFactory, **spec: Any) -> Any:
    body = purifier_body()
    body["spec"].update(spec)
    [purifier] = _view(body).purifiers()
    return purifier


def test_the_catalog_in_korean(purifier_body: PurifierFactory) -> None:
    purifier = _purifier(purifier_body, mandatoryMonths=36, earlyTerminationPercent=10)
    page = shop_pages.catalog([purifier], customer="cust-1", language="ko")
    assert '<html lang="ko">' in page
    text = _text(page)
    for fact in (
        "정수기 렌탈 상품",
        "월 렌탈료 월 30,000원",
        "의무사용기간 36개월",
        "의무사용기간(36개월) 안에 해지하시면(청약철회 기간 이후), "
        "남은 의무사용기간 월 렌탈료의 10%를 위약금으로",
        "청약철회",
        "계약 조건 및 신청",
    ):
        assert fact in text, (fact, text)
    assert "cust-1 고객님" in page


def test_the_apply_form_in_korean(purifier_body: PurifierFactory) -> None:
    purifier = _purifier(purifier_body, mandatoryMonths=12)
    page = shop_pages.purifier_page(
        purifier, customer="cust-1", csrf_token="t", application="a", language="ko"
    )
    for label in ("이름", "휴대폰 번호", "배송 주소", "계약 기간", "12개월", "이 정수기 렌탈 신청하기"):
        assert f">{label}<" in page, label
    assert "첫 달 렌탈료가 결제되고, 이후 매월 결제됩니다" in page
    english = shop_pages.purifier_page(purifier, customer="cust-1", csrf_token="t", application="a")
    assert '<html lang="en">' in english and ">Your name<" in english  # English unless asked


def test_the_cancel_step_in_korean(rental_body: RentalFactory, billing_body: BillingFactory) -> None:
    [rental] = _view(rental_body(billing=billing_body())).rentals_of("cust-1")
    page = shop_pages.cancel_page("cust-1", rental, now=WITHDRAWAL_ENDS + DAY, csrf_token="t", language="ko")
    text = _text(page)
    assert "지금 취소하시면" in text
    assert "위약금(27,000원)이 한 번 청구됩니다" in text
    assert "네, 렌탈을 취소합니다" in text and "아니요, 계속 이용합니다" in text


def test_the_live_section_and_its_script_words_in_korean(rental_body: RentalFactory) -> None:
    rentals = _view(rental_body()).rentals_of("cust-1")
    section = shop_pages.live_section("cust-1", rentals, language="ko")
    assert "실시간 진행 상황" in section
    # The script's words (data-phases) are Korean too, the same words as the server's.
    assert html.escape('"phase_Confirmed":"렌탈 확정"', quote=True) in section
    assert html.escape('"delivery_Delivered":"배송 완료"', quote=True) in section
    assert shop_pages.phase_words("PastDue", "ko") == "렌탈료 연체"
    assert shop_pages.delivery_words(None, "ko") == "배송 전"
