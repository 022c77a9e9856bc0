"""reconcilers.notifications: one text per history entry, which entries are still owed, and their keys."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from rental_operator.api import rental as api_rental
from rental_operator.reconcilers import notifications

AT = "2025-06-01T09:00:00+00:00"


def _rental(
    history: list[tuple[str, str]] | None = None,
    *,
    notified: int | None = None,
    amount: int | None = 1_076_400,
    currency: str = "KRW",
    tracking: str | None = "TRK-42",
    name: str | None = "Kim",
    months: int = 12,
    first_seq: int = 1,
) -> api_rental.Rental:
    customer: dict[str, Any] = {"id": "cust-7", "phone": "+821012345678", "address": "Seoul"}
    if name is not None:
        customer["name"] = name
    status: dict[str, Any] = {
        "phase": "Confirmed",
        "history": [
            {"seq": seq, "kind": kind, "phase": phase, "at": AT, "message": f"entered {phase}"}
            for seq, (kind, phase) in enumerate(history or [], start=first_seq)
        ],
        "delivery": {"name": "r1", "phase": "Shipping", "trackingNumber": tracking},
    }
    if amount is not None:
        status["payment"] = {"name": "r1", "phase": "Approved", "amount": amount, "currency": currency}
    if notified is not None:
        status["notifiedSeq"] = notified
    return api_rental.Rental.model_validate(
        {
            "metadata": {"name": "r1", "namespace": "shop", "uid": "uid-1"},
            "spec": {"purifier": "aquapure-300", "customer": customer, "months": months},
            "status": status,
        }
    )


def _entry(kind: str, phase: str, message: str | None = None, seq: int = 1) -> api_rental.HistoryEntry:
    return api_rental.HistoryEntry.model_validate(
        {"seq": seq, "kind": kind, "phase": phase, "at": AT, "message": message}
    )


# --- amounts --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (1_076_400, "KRW", "1,076,400 KRW"),
        (39_000, "KRW", "39,000 KRW"),
        (0, "KRW", "0 KRW"),
        (5_000, "JPY", "5,000 JPY"),
        (12_345_67, "USD", "12,345.67 USD"),
        (2_999, "USD", "29.99 USD"),
        (500, "USD", "5.00 USD"),
        (7, "EUR", "0.07 EUR"),
        (100_000_000, "USD", "1,000,000.00 USD"),
        # No minor unit in ISO 4217: texts once said 360.00 XPF where MyPage said 36,000 (issue 13).
        (36_000, "XPF", "36,000 XPF"),
        *((120_000, code, f"120,000 {code}") for code in ("RWF", "VUV", "BIF", "DJF", "GNF", "KMF", "UYI")),
        (12_345, "KWD", "12.345 KWD"),
        # Exact past the float's 53 bits.
        (2**60 + 1, "USD", "11,529,215,046,068,469.77 USD"),
    ],
)
def test_format_amount(amount: int, currency: str, text: str) -> None:
    assert notifications.format_amount(amount, currency) == text


@pytest.mark.parametrize(("amount", "currency"), [(None, "KRW"), (100, None), (None, None)])
def test_format_amount_without_payment(amount: int | None, currency: str | None) -> None:
    assert notifications.format_amount(amount, currency) == "the fee"


# --- texts ----------------------------------------------------------------------------------------------
RENTAL_TEXTS = {
    "Pending": ["received your application", "AquaPure 300", "12 months"],
    "AwaitingPayment": ["reserved", "1,076,400 KRW"],
    "PaymentDeferred": ["busy", "1,076,400 KRW", "automatically"],
    "Confirmed": ["1,076,400 KRW", "confirmed", "AquaPure 300"],
    "PastDue": ["overdue", "try again"],
    "Cancelling": ["ending your rental", "entered Cancelling"],
    "Cancelled": ["has ended", "entered Cancelled"],
    "Completed": ["complete", "now yours"],
    "Rejected": ["could not accept", "entered Rejected"],
}
DELIVERY_TEXTS = {
    "Shipping": ["on its way", "TRK-42"],
    "Delivered": ["delivered"],
    "Cancelled": ["delivery", "cancelled"],
    "Returning": ["collecting", "TRK-42"],
    "Returned": ["received your returned"],
}


def test_every_rental_phase_has_a_text() -> None:
    assert set(RENTAL_TEXTS) == {p.value for p in api_rental.RentalPhase}


@pytest.mark.parametrize(
    ("kind", "phase", "needles"),
    [
        *(("Rental", phase, needles) for phase, needles in RENTAL_TEXTS.items()),
        *(("Delivery", phase, needles) for phase, needles in DELIVERY_TEXTS.items()),
    ],
)
def test_text_per_phase(kind: str, phase: str, needles: list[str]) -> None:
    text = notifications.text(_rental(), _entry(kind, phase, f"entered {phase}"), "AquaPure 300")
    assert text.startswith("[PureRental] Kim, ")
    assert text.endswith("(ref r1)")
    for needle in needles:
        assert needle in text, (needle, text)
    assert "\n" not in text


def test_texts_of_different_phases_differ() -> None:
    rental = _rental()
    texts = {notifications.text(rental, _entry("Rental", p), "M") for p in RENTAL_TEXTS}
    texts |= {notifications.text(rental, _entry("Delivery", p), "M") for p in DELIVERY_TEXTS}
    assert len(texts) == len(RENTAL_TEXTS) + len(DELIVERY_TEXTS)


def test_amount_in_usd() -> None:
    text = notifications.text(_rental(amount=2_999, currency="USD"), _entry("Rental", "Confirmed"), "M")
    assert "29.99 USD" in text


def test_model_falls_back_to_the_purifier_name() -> None:
    text = notifications.text(_rental(), _entry("Rental", "Confirmed"), None)
    assert "aquapure-300" in text


def test_customer_name_falls_back() -> None:
    text = notifications.text(_rental(name=None), _entry("Rental", "Confirmed"), "M")
    assert text.startswith("[PureRental] customer, ")


def test_without_payment_the_text_says_the_fee() -> None:
    text = notifications.text(_rental(amount=None), _entry("Rental", "AwaitingPayment"), "M")
    assert "charging the fee" in text


def test_tracking_number_pending_when_unknown() -> None:
    text = notifications.text(_rental(tracking=None), _entry("Delivery", "Shipping"), "M")
    assert "Tracking number: pending" in text


def test_rejection_without_a_message_points_to_mypage() -> None:
    text = notifications.text(_rental(), _entry("Rental", "Rejected", None), "M")
    assert "see MyPage" in text


def test_unknown_phases_still_get_a_text() -> None:
    rental = _rental()
    assert "now Lost" in notifications.text(rental, _entry("Delivery", "Lost"), "M")
    assert "now Paused" in notifications.text(rental, _entry("Rental", "Paused"), "M")


def test_months_are_the_rentals() -> None:
    text = notifications.text(_rental(months=24), _entry("Rental", "Pending"), "M")
    assert "24 months" in text


# --- what is still owed ------------------------------------------------------------------------------------
HISTORY = [
    ("Rental", "Pending"),
    ("Rental", "AwaitingPayment"),
    ("Rental", "Confirmed"),
    ("Delivery", "Shipping"),
]


@pytest.mark.parametrize(
    ("persisted", "sent_through", "owed"),
    [
        (None, 0, [1, 2, 3, 4]),
        (0, 0, [1, 2, 3, 4]),
        (2, 0, [3, 4]),
        (None, 3, [4]),
        (2, 3, [4]),  # the in-memory mark is ahead of the written one
        (3, 1, [4]),  # the written mark is ahead (another replica sent them)
        (4, 0, []),
        (0, 4, []),
        (9, 0, []),
    ],
)
def test_pending_respects_both_marks(persisted: int | None, sent_through: int, owed: list[int]) -> None:
    rental = _rental(HISTORY, notified=persisted)
    assert [entry.seq for entry in notifications.pending(rental, sent_through)] == owed


def test_pending_after_trimming_uses_seq_not_position() -> None:
    rental = _rental(HISTORY, first_seq=30, notified=31)
    assert [entry.seq for entry in notifications.pending(rental, 0)] == [32, 33]


def test_idempotency_key() -> None:
    rental = _rental(HISTORY)
    keys = [notifications.idempotency_key(rental, entry) for entry in rental.status.history]
    assert keys == ["sms-uid-1-1", "sms-uid-1-2", "sms-uid-1-3", "sms-uid-1-4"]


def test_idempotency_key_is_stable_for_the_same_entry() -> None:
    rental = _rental(HISTORY)
    entry = rental.status.history[2]
    again = _rental(HISTORY, notified=2).status.history[2]
    assert notifications.idempotency_key(rental, entry) == notifications.idempotency_key(rental, again)


def test_entry_time_does_not_matter_for_the_key() -> None:
    rental = _rental()
    one = _entry("Rental", "Confirmed", seq=5)
    other = one.model_copy(update={"at": datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)})
    assert notifications.idempotency_key(rental, one) == notifications.idempotency_key(rental, other)


# --- billing: a receipt, a declined charge, the term's end, a fee ----------------------------------------
def _billed(entry: dict[str, Any]) -> tuple[api_rental.Rental, api_rental.HistoryEntry]:
    rental = _rental([("Rental", "Confirmed")], months=36)
    billing = {"monthlyFee": 33_000, "currency": "KRW", "periodsTotal": 36, "periodsPaid": 3}
    rental = rental.model_copy(
        update={
            "status": rental.status.model_copy(update={"billing": api_rental.Billing.model_validate(billing)})
        }
    )
    return rental, api_rental.HistoryEntry.model_validate({"seq": 9, "kind": "Billing", "at": AT, **entry})


@pytest.mark.parametrize(
    ("entry", "needles"),
    [
        ({"phase": "Charged", "period": 3, "amount": 33_000}, ["received 33,000 KRW", "month 3 of 36"]),
        (
            {
                "phase": "ChargeDeclined",
                "period": 4,
                "amount": 33_000,
                "dueAt": "2027-05-01T09:00:00+00:00",
                "message": "insufficient funds",
            },
            ["33,000 KRW", "month 4 of 36", "declined (insufficient funds)", "try again on 2027-05-01"],
        ),
        (
            {"phase": "ChargeDeclined", "period": 4, "amount": 33_000, "message": "card expired"},
            ["declined (card expired)", "will not be retried"],
        ),
        (
            {"phase": "TermEnding", "period": 36, "dueAt": "2030-01-31T09:00:00+00:00"},
            ["2030-01-31", "becomes yours"],
        ),
        ({"phase": "FeeCharged", "amount": 79_200}, ["early-termination fee of 79,200 KRW"]),
    ],
)
def test_billing_texts(entry: dict[str, Any], needles: list[str]) -> None:
    rental, parsed = _billed(entry)
    text = notifications.text(rental, parsed, "AquaPure 300")
    for needle in needles:
        assert needle in text, text


# --- Korean: every text from the catalog, with the words a Korean customer looks for ----------------------
KO_RENTAL_TEXTS = {
    "Pending": ["렌탈 신청(12개월)이 접수되었습니다", "AquaPure 300"],
    "AwaitingPayment": ["예약되었습니다", "1,076,400원 결제를 진행하고 있습니다"],
    "PaymentDeferred": ["결제 시스템", "예약은 그대로 유지", "1,076,400원 결제는", "자동으로"],
    "Confirmed": ["1,076,400원 결제가 완료", "렌탈이 확정되었습니다"],
    "PastDue": ["월 렌탈료가 연체되었습니다", "다시 시도"],
    "Cancelling": ["렌탈 해지를 진행하고 있습니다", "사유: entered Cancelling"],
    "Cancelled": ["렌탈이 종료되었습니다", "사유: entered Cancelled"],
    "Completed": ["소유권이 고객님께 이전되었습니다", "감사합니다"],
    "Rejected": ["죄송합니다", "접수하지 못했습니다", "사유: entered Rejected"],
}
KO_DELIVERY_TEXTS = {
    "Shipping": ["배송이 시작되었습니다", "운송장 번호: TRK-42"],
    "Delivered": ["배송이 완료되었습니다"],
    "Cancelled": ["배송이 취소되었습니다"],
    "Returning": ["반납 회수를 진행하고 있습니다", "운송장 번호: TRK-42"],
    "Returned": ["반납하신", "잘 받았습니다"],
}


def test_every_rental_phase_has_a_korean_text() -> None:
    assert set(KO_RENTAL_TEXTS) == {p.value for p in api_rental.RentalPhase}


@pytest.mark.parametrize(
    ("kind", "phase", "needles"),
    [
        *(("Rental", phase, needles) for phase, needles in KO_RENTAL_TEXTS.items()),
        *(("Delivery", phase, needles) for phase, needles in KO_DELIVERY_TEXTS.items()),
    ],
)
def test_korean_text_per_phase(kind: str, phase: str, needles: list[str]) -> None:
    text = notifications.text(
        _rental(name="김민준"), _entry(kind, phase, f"entered {phase}"), "AquaPure 300", language="ko"
    )
    assert text.startswith("[퓨어렌탈] 김민준 고객님, "), text
    assert text.endswith(" (계약번호 r1)"), text
    for needle in needles:
        assert needle in text, text
    # Korean's own words, not the English ones: no English sentence slipped through untranslated.
    assert "your" not in text and "PureRental" not in text, text
    assert "\n" not in text and len(text) <= notifications.TEXT_LIMIT


def test_korean_texts_of_different_phases_differ() -> None:
    rental = _rental()
    texts = {notifications.text(rental, _entry("Rental", p), "M", language="ko") for p in KO_RENTAL_TEXTS}
    texts |= {
        notifications.text(rental, _entry("Delivery", p), "M", language="ko") for p in KO_DELIVERY_TEXTS
    }
    assert len(texts) == len(KO_RENTAL_TEXTS) + len(KO_DELIVERY_TEXTS)


def test_korean_fallbacks() -> None:
    nameless = notifications.text(_rental(name=None), _entry("Rental", "Confirmed"), "M", language="ko")
    assert nameless.startswith("[퓨어렌탈] 고객님, "), nameless
    unpaid = notifications.text(_rental(amount=None), _entry("Rental", "AwaitingPayment"), "M", language="ko")
    assert "렌탈료 결제를 진행하고 있습니다" in unpaid
    untracked = notifications.text(_rental(tracking=None), _entry("Delivery", "Shipping"), "M", language="ko")
    assert "운송장 번호: 발급 전" in untracked
    rejected = notifications.text(_rental(), _entry("Rental", "Rejected", None), "M", language="ko")
    assert "마이페이지에서 확인해 주세요" in rejected
    assert "렌탈 상태가 변경되었습니다: Paused" in notifications.text(
        _rental(), _entry("Rental", "Paused"), "M", language="ko"
    )
    assert "배송 상태가 변경되었습니다: Lost" in notifications.text(
        _rental(), _entry("Delivery", "Lost"), "M", language="ko"
    )


def test_korean_amounts_in_other_currencies() -> None:
    text = notifications.text(
        _rental(amount=2_999, currency="USD"), _entry("Rental", "Confirmed"), "M", language="ko"
    )
    assert "US$29.99 결제가 완료" in text


@pytest.mark.parametrize(
    ("entry", "needles"),
    [
        (
            {"phase": "Charged", "period": 3, "amount": 33_000},
            ["월 렌탈료(3/36회차) 33,000원 결제가 완료되었습니다", "감사합니다"],
        ),
        (
            {
                "phase": "ChargeDeclined",
                "period": 4,
                "amount": 33_000,
                # 23:30 UTC on April 30 is already May 1 in Korea: the date is the customer's.
                "dueAt": "2027-04-30T23:30:00+00:00",
                "message": "insufficient funds",
            },
            [
                "(4/36회차) 33,000원 결제가 승인되지 않았습니다",
                "사유: insufficient funds",
                "2027년 5월 1일에 결제를 다시 시도할 예정이오니",
            ],
        ),
        (
            {"phase": "ChargeDeclined", "period": 4, "amount": 33_000, "message": "card expired"},
            ["승인되지 않았습니다(사유: card expired)", "더 이상 결제를 시도하지 않습니다"],
        ),
        (
            {"phase": "TermEnding", "period": 36, "dueAt": "2030-01-31T09:00:00+00:00"},
            ["마지막 월 렌탈료 납부가 완료", "2030년 1월 31일에 AquaPure 300의 소유권이 고객님께 이전됩니다"],
        ),
        ({"phase": "TermEnding", "period": 36}, ["계약 만료일에 AquaPure 300의 소유권"]),
        ({"phase": "FeeCharged", "amount": 79_200}, ["중도 해지", "위약금(79,200원)이 청구되었습니다"]),
        ({"phase": "Charged", "amount": 33_000}, ["월 렌탈료(이번 달) 33,000원"]),
        ({"phase": "Adjusted"}, ["렌탈료 결제 상태가 변경되었습니다: Adjusted"]),
    ],
)
def test_korean_billing_texts(entry: dict[str, Any], needles: list[str]) -> None:
    rental, parsed = _billed(entry)
    text = notifications.text(rental, parsed, "AquaPure 300", language="ko")
    for needle in needles:
        assert needle in text, text


def test_the_customers_language_wins_over_the_default() -> None:
    rental = _rental()
    assert notifications.language_of(rental, "ko") == "ko"
    assert notifications.language_of(rental, "en") == "en"
    english = rental.model_copy(
        update={
            "spec": rental.spec.model_copy(
                update={"customer": rental.spec.customer.model_copy(update={"language": "en"})}
            )
        }
    )
    assert notifications.language_of(english, "ko") == "en"
