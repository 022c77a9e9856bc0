"""controllers.notifier: one text per history entry, under the entry's key, and only once."""

from __future__ import annotations

from typing import Any

from rental_operator.api import rental as api_rental
from rental_operator.controllers import notifier, rentals


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
