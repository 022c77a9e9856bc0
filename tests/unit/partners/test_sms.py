"""sms: masking, GSM-7/UCS-2 counting, safe truncation, and the two senders."""

from __future__ import annotations

import logging
import random
import unicodedata
from typing import Any

import pytest

from rental_operator.partners import errors, sms

# Masking.


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+821012345678", "+82******5678"),
        ("+14155550123", "+14*****0123"),
        ("+8212345", "******45"),
        ("123", "***"),
        ("", ""),
    ],
)
def test_phone_numbers_are_masked_keeping_country_and_last_digits(number: str, masked: str) -> None:
    assert sms.mask_phone(number) == masked
    assert len(sms.mask_phone(number)) == len(number)


# Encoding and length.


def test_encoding_is_gsm7_only_when_every_character_is_in_the_alphabet() -> None:
    assert sms.sms_encoding("Your purifier ships today! Ref: A-1 (€5) {ok}") == "gsm-7"
    assert sms.sms_encoding("정수기가 오늘 출발합니다") == "ucs-2"
    assert sms.sms_encoding("It's shipped…") == "ucs-2"  # the ellipsis character is not GSM-7
    assert sms.sms_encoding("") == "gsm-7"


def test_lengths_count_what_the_network_counts() -> None:
    assert sms.sms_length("abc") == 3
    assert sms.sms_length("a{b}€") == 8  # extension characters take two septets
    assert sms.sms_length("정수기") == 3
    assert sms.sms_length("ok 👍") == 5  # outside the BMP: two UTF-16 units


# Truncation.


def test_a_text_that_fits_is_left_alone() -> None:
    assert sms.truncate_for_sms("x" * 160) == "x" * 160
    assert sms.truncate_for_sms("가" * 70) == "가" * 70


def test_gsm7_texts_get_three_dots_and_stay_gsm7() -> None:
    cut = sms.truncate_for_sms("word " * 40)
    assert cut.endswith("wo...")
    assert sms.sms_encoding(cut) == "gsm-7"
    assert sms.sms_length(cut) <= 160


def test_ucs2_texts_get_the_ellipsis_character_within_70() -> None:
    cut = sms.truncate_for_sms("정수기 렌탈이 확정되었습니다. " * 10)
    assert cut.endswith("…")
    assert sms.sms_length(cut) <= 70


def test_an_explicit_limit_counts_in_the_texts_encoding() -> None:
    assert sms.truncate_for_sms("abcdefghij", limit=8) == "abcde..."
    assert sms.truncate_for_sms("{{{{{{", limit=8) == "{{..."  # 2 septets each
    assert sms.truncate_for_sms("가나다라마", limit=3) == "가나…"
    assert sms.truncate_for_sms("abcdef", limit=2) == ".."
    with pytest.raises(ValueError):
        sms.truncate_for_sms("abc", limit=0)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("cafe\u0301 cafe\u0301", 5, "caf…"),  # e + combining acute is dropped whole
        ("ab👍🏽cd", 5, "ab…"),  # thumbs up with skin tone: 4 units, dropped whole
        ("ab👨\u200d👩\u200d👧xyz", 6, "ab…"),  # a ZWJ family is one character
        ("🇰🇷🇯🇵🇺🇸", 5, "🇰🇷…"),  # flags are pairs of regional indicators
        ("\u1100\u1161\u11a8\u1100\u1161", 3, "…"),  # decomposed 각 is not cut down to 가
        ("\u1100\u1161\u11a8\u1100\u1161", 4, "\u1100\u1161\u11a8…"),
        ("ab\r\ncd", 5, "ab..."),
    ],
)
def test_cuts_never_split_a_character(text: str, limit: int, expected: str) -> None:
    assert sms.truncate_for_sms(text, limit=limit) == expected


def test_truncation_always_fits_and_keeps_a_prefix() -> None:
    alphabet = "abc {}€é\u0301가\u1161👍🏽🇰\u200d\r\n…"
    chooser = random.Random(7)
    for _ in range(2000):
        text = "".join(chooser.choice(alphabet) for _ in range(chooser.randint(0, 120)))
        limit = chooser.randint(1, 80)
        cut = sms.truncate_for_sms(text, limit=limit)
        encoding = sms.sms_encoding(text)
        assert sms.sms_length(cut, encoding) <= max(
            limit, sms.sms_length(text, encoding) if cut == text else 0
        )
        if cut != text:
            head = cut[:-3] if cut.endswith("...") and encoding == "gsm-7" else cut[:-1]
            assert text.startswith(head)
            rest = text[len(head) :]
            assert not head or not rest or not unicodedata.combining(rest[0])


# Senders.


def test_the_logging_sender_logs_one_masked_line_per_key(caplog: pytest.LogCaptureFixture) -> None:
    sender = sms.LoggingSmsSender()
    with caplog.at_level(logging.INFO, logger="rental_operator.partners.sms"):
        assert (
            sender.send(
                to="+821012345678", text="배송 시작\nline 2", reference="ns/rent-1", idempotency_key="k1"
            )
            is None
        )
        sender.send(to="+821012345678", text="배송 시작\nline 2", reference="ns/rent-1", idempotency_key="k1")
        sender.send(to="+821012345678", text="second", reference="ns/rent-1", idempotency_key="k2")
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert all("\n" not in line for line in lines)
    assert "+82******5678" in lines[0] and "12345678" not in "".join(lines)
    assert '"배송 시작\\nline 2"' in lines[0]


def test_the_logging_sender_forgets_old_keys_eventually(caplog: pytest.LogCaptureFixture) -> None:
    sender = sms.LoggingSmsSender(remembered=2)
    with caplog.at_level(logging.INFO, logger="rental_operator.partners.sms"):
        for key in ("a", "b", "c", "a"):
            sender.send(to="+821012345678", text="t", reference="r", idempotency_key=key)
    assert len(caplog.records) == 4


def test_the_http_sender_posts_a_message_and_returns_its_id(partner: Any, make_settings: Any) -> None:
    partner.default = partner.Reply(202, {"id": "msg_1", "status": "accepted"})
    settings = make_settings(partner.url, sms_url=partner.url, sms_api_key="mk-1")
    sender = sms.sender_from_settings(settings, timeout_seconds=0.5)
    assert isinstance(sender, sms.HttpSmsSender)
    try:
        assert (
            sender.send(to="+821012345678", text="hi", reference="ns/rent-1", idempotency_key="k1") == "msg_1"
        )
    finally:
        sender.close()
    (request,) = partner.received
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.json() == {"to": "+821012345678", "text": "hi", "reference": "ns/rent-1"}
    assert request.headers["idempotency-key"] == "k1"
    assert request.headers["authorization"] == "Bearer mk-1"


def test_the_http_sender_raises_partner_errors(partner: Any, make_settings: Any) -> None:
    partner.default = partner.Reply(400, {"error": "to must be a phone number in E.164 form"})
    sender = sms.HttpSmsSender(make_settings(partner.url, sms_url=partner.url))
    with pytest.raises(errors.PartnerRejected) as caught:
        sender.send(to="010", text="hi", reference="r", idempotency_key="k")
    assert caught.value.partner == "sms"


def test_without_an_sms_url_the_factory_logs(make_settings: Any) -> None:
    sender = sms.sender_from_settings(make_settings("http://127.0.0.1:1/"))
    assert isinstance(sender, sms.LoggingSmsSender)
    with pytest.raises(ValueError):
        sms.HttpSmsSender(make_settings("http://127.0.0.1:1/"))
