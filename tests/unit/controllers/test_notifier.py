"""controllers.notifier: one text per history entry, under the entry's key, and only once."""

from __future__ import annotations

from typing import Any

from rental_operator.api import rental as api_rental
from rental_operator.controllers import notifier, rentals
from rental_operator.partners import sms


def _rental(world: Any, make: Any) -> api_rental.Rental:
    world.add(make.purifier())
    world.add(make.rental())
    world.sms.down = True  # keep the first pass from sending: each test sends itself
    rentals.reconcile(world.ctx, "shop", "kim")
    world.sms.down = False
    return api_rental.Rental.from_body(world.kube.body("Rental", "kim"))


def test_each_entry_is_texted_once_under_its_key(world: Any, make: Any) -> None:
    rental = _rental(world, make)
    assert notifier.notify(world.ctx, rental) is True
    uid = rental.metadata.uid
    assert [m["key"] for m in world.sms.sent] == [f"sms-{uid}-1", f"sms-{uid}-2"]
    assert [m["reference"] for m in world.sms.sent] == ["shop/kim/1", "shop/kim/2"]
    assert all(m["to"] == "+821012345678" for m in world.sms.sent)
    assert world.ctx.notified[uid] == 2
    assert notifier.notify(world.ctx, rental) is True
    assert len(world.sms.sent) == 2  # nothing new


def test_a_failed_send_stops_and_asks_to_be_retried(world: Any, make: Any) -> None:
    rental = _rental(world, make)
    world.sms.down = True
    assert notifier.notify(world.ctx, rental) is False
    assert world.ctx.notified.get(rental.metadata.uid or "", 0) == 0


def test_what_the_rental_recorded_as_sent_is_not_sent_again(world: Any, make: Any) -> None:
    rental = _rental(world, make)
    world.ctx.notified[rental.metadata.uid or ""] = 1  # e.g. restored from status.notifiedSeq
    assert notifier.notify(world.ctx, rental) is True
    assert [m["reference"] for m in world.sms.sent] == ["shop/kim/2"]


def test_the_rental_pass_retries_when_a_text_could_not_be_sent(world: Any, make: Any) -> None:
    _rental(world, make)
    assert world.scheduler.delay("rental", "shop", "kim") == 2.0
    world.scheduler.run("rental", "shop", "kim")
    assert len(world.sms.sent) == 2


def _rental_in(world: Any, make: Any, language: str | None, name: str = "김민준") -> api_rental.Rental:
    body = make.rental()
    body["spec"]["customer"]["name"] = name
    if language is not None:
        body["spec"]["customer"]["language"] = language
    world.add(make.purifier())
    world.add(body)
    world.sms.down = True
    rentals.reconcile(world.ctx, "shop", "kim")
    world.sms.down = False
    return api_rental.Rental.from_body(world.kube.body("Rental", "kim"))


def test_texts_are_in_korean_by_default(world: Any, make: Any) -> None:
    assert world.ctx.settings.default_language == "ko"  # RENTAL_DEFAULT_LANGUAGE's default
    assert notifier.notify(world.ctx, _rental_in(world, make, None)) is True
    texts = [m["text"] for m in world.sms.sent]
    assert texts and all(text.startswith("[퓨어렌탈] 김민준 고객님, ") for text in texts), texts
    assert "렌탈 신청(12개월)이 접수되었습니다" in texts[0]


def test_the_customers_language_wins_over_the_setting(world: Any, make: Any) -> None:
    assert notifier.notify(world.ctx, _rental_in(world, make, "en", name="Kim")) is True
    assert all(m["text"].startswith("[PureRental] Kim, ") for m in world.sms.sent)


def test_the_setting_chooses_for_rentals_without_a_language(world: Any, make: Any) -> None:
    world.configure(default_language="en")
    assert notifier.notify(world.ctx, _rental_in(world, make, None, name="Kim")) is True
    assert all(m["text"].startswith("[PureRental] Kim, ") for m in world.sms.sent)
    world.sms.sent.clear()
    world.ctx.notified.clear()
    korean = _rental_in(world, make, "ko")
    assert notifier.notify(world.ctx, korean) is True
    assert all(m["text"].startswith("[퓨어렌탈]") for m in world.sms.sent)


def test_korean_texts_fit_three_ucs2_segments_whatever_the_values(world: Any, make: Any) -> None:
    rental = _rental_in(world, make, "ko", name="가" * 200)
    assert notifier.notify(world.ctx, rental) is True
    for message in world.sms.sent:
        assert sms.sms_encoding(message["text"]) == "ucs-2"
        assert sms.sms_length(message["text"]) <= 3 * 67, message["text"]
        assert "가" * 41 not in message["text"]  # the name was capped before the text was cut
