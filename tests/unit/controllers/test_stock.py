"""controllers.stock: reservations and releases on the Purifier's status, under its resourceVersion."""

from __future__ import annotations

from typing import Any

from rental_operator import kubeapi
from rental_operator.api import rental as api_rental
from rental_operator.controllers import stock
from rental_operator.reconcilers import stock as reconcilers_stock


def _claim(world: Any, make: Any, name: str) -> reconcilers_stock.Claim:
    body = world.add(make.rental(name))
    return reconcilers_stock.Claim(name, body["metadata"]["uid"])


def test_units_are_reserved_until_none_is_left(world: Any, make: Any) -> None:
    world.add(make.purifier(stock=1))
    first, second = _claim(world, make, "kim"), _claim(world, make, "lee")
    after, held = stock.reserve(world.ctx, "shop", "aqua", first)
    assert held is True
    assert after is not None
    assert (after["status"]["allocated"], after["status"]["available"]) == (1, 0)
    assert stock.reserve(world.ctx, "shop", "aqua", second)[1] is False
    assert stock.reserve(world.ctx, "shop", "aqua", first)[1] is True  # asking again changes nothing
    assert world.kube.status("Purifier", "aqua")["allocated"] == 1


def test_a_release_gives_the_unit_back(world: Any, make: Any) -> None:
    world.add(make.purifier(stock=1))
    claim = _claim(world, make, "kim")
    stock.reserve(world.ctx, "shop", "aqua", claim)
    after = stock.release(world.ctx, "shop", "aqua", claim)
    assert after is not None
    assert (after["status"]["allocated"], after["status"]["available"]) == (0, 1)


def test_a_conflicting_write_is_recomputed_on_a_fresh_read(world: Any, make: Any) -> None:
    world.add(make.purifier(stock=1))
    claim = _claim(world, make, "kim")
    world.kube.fail("replace_status", kubeapi.Conflict("modified"))
    assert stock.reserve(world.ctx, "shop", "aqua", claim)[1] is True
    assert world.kube.count("replace_status", "Purifier") == 2
    assert world.kube.status("Purifier", "aqua")["allocated"] == 1


def test_no_purifier_no_unit(world: Any, make: Any) -> None:
    assert stock.reserve(world.ctx, "shop", "nowhere", _claim(world, make, "kim")) == (None, False)


def test_a_refresh_brings_the_counts_in_line_with_the_spec(world: Any, make: Any) -> None:
    world.add(make.purifier(stock=3))
    assert stock.is_current(world.kube.body("Purifier", "aqua")) is False
    stock.refresh(world.ctx, "shop", "aqua")
    body = world.kube.body("Purifier", "aqua")
    assert (body["status"]["allocated"], body["status"]["available"]) == (0, 3)
    assert stock.is_current(body) is True


def _records_unit(world: Any, name: str) -> None:
    """The rental records its unit (StockReserved True), as its status write after a reservation does."""
    body = world.kube.body("Rental", name)
    held = {"type": "StockReserved", "status": "True", "reason": "Reserved", "message": "held"}
    world.kube.replace_status(api_rental.RESOURCE, body, {"conditions": [held]})


def test_a_transfer_moves_the_unit_to_transferred_for_good(world: Any, make: Any) -> None:
    world.add(make.purifier(stock=2))
    claim = _claim(world, make, "kim")
    stock.reserve(world.ctx, "shop", "aqua", claim)
    _records_unit(world, "kim")

    after = stock.transfer(world.ctx, "shop", "aqua", claim)
    assert after is not None
    status = after["status"]
    assert (status["allocated"], status["transferred"], status["available"]) == (0, 1, 1)
    assert stock.is_current(after) is True
    # journaled until the rental records it: a retried transfer (or release) changes nothing
    assert [c["operation"] for c in status["pending"]] == ["Transfer"]
    assert stock.transfer(world.ctx, "shop", "aqua", claim) is not None
    assert stock.release(world.ctx, "shop", "aqua", claim) is not None
    status = world.kube.status("Purifier", "aqua")
    assert (status["allocated"], status["transferred"], status["available"]) == (0, 1, 1)

    lee = _claim(world, make, "lee")
    assert stock.reserve(world.ctx, "shop", "aqua", lee)[1] is True  # the one unit left
    assert stock.reserve(world.ctx, "shop", "aqua", _claim(world, make, "park"))[1] is False
    status = world.kube.status("Purifier", "aqua")
    assert (status["allocated"], status["transferred"], status["available"]) == (1, 1, 0)


def test_a_refresh_keeps_the_transferred_units_out_of_stock(world: Any, make: Any) -> None:
    world.add({**make.purifier(stock=3), "status": {"allocated": 1, "transferred": 2, "available": 0}})
    stock.refresh(world.ctx, "shop", "aqua")
    body = world.kube.body("Purifier", "aqua")
    assert (body["status"]["allocated"], body["status"]["transferred"], body["status"]["available"]) == (
        1,
        2,
        0,
    )
    assert stock.is_current(body) is True
