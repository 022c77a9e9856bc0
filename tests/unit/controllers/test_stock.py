"""controllers.stock: reservations and releases on the Purifier's status, under its resourceVersion."""

from __future__ import annotations

from typing import Any

from rental_operator import kubeapi
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
