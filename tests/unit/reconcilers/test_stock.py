"""reconcilers.stock: reservations by name never exceed stock, are idempotent, and are reported."""

from __future__ import annotations

import datetime
import random
from typing import Any

import pytest

from rental_operator.api import purifier as api_purifier
from rental_operator.reconcilers import stock

NOW = datetime.datetime(2025, 6, 1, 9, 0, tzinfo=datetime.UTC)
LATER = NOW + datetime.timedelta(minutes=1)

RESERVED = stock.Outcome.RESERVED
OUT = stock.Outcome.OUT_OF_STOCK


def _purifier(
    *, stock: int = 3, holders: list[str] | None = None, generation: int = 1, summarized: bool = True
) -> api_purifier.Purifier:
    """A Purifier with the status the operator writes for `holders` (bare holders if not summarized)."""
    body: dict[str, Any] = {
        "metadata": {"name": "aquapure-300", "namespace": "shop", "generation": generation},
        "spec": {"model": "AquaPure 300", "monthlyFee": 89_700, "stock": stock},
        "status": {"holders": holders or []},
    }
    parsed = api_purifier.Purifier.model_validate(body)
    if not summarized:
        return parsed
    status = _summarized(parsed)
    return parsed.model_copy(update={"status": status})


def _summarized(obj: api_purifier.Purifier) -> api_purifier.PurifierStatus:
    return stock.summarize(
        obj.spec, obj.status, list(obj.status.holders), generation=obj.metadata.generation, now=NOW
    )


def _apply(obj: api_purifier.Purifier, status: api_purifier.PurifierStatus | None) -> api_purifier.Purifier:
    return obj if status is None else obj.model_copy(update={"status": status})


def _ready(status: api_purifier.PurifierStatus) -> tuple[str, str]:
    (ready,) = status.conditions
    assert ready.type == "Ready"
    return ready.status.value, ready.reason


# --- reserve -------------------------------------------------------------------------------------------
def test_reserve_takes_a_unit() -> None:
    status, outcomes = stock.reserve(_purifier(stock=2), ["r1"], now=NOW)
    assert outcomes == {"r1": RESERVED}
    assert status is not None
    assert (status.holders, status.allocated, status.available) == (["r1"], 1, 1)
    assert _ready(status) == ("True", "InStock")


def test_reserve_is_idempotent() -> None:
    obj = _purifier(stock=2, holders=["r1"])
    status, outcomes = stock.reserve(obj, ["r1"], now=LATER)
    assert status is None  # nothing to write
    assert outcomes == {"r1": RESERVED}


def test_reserving_the_same_name_twice_in_one_batch_holds_one_unit() -> None:
    status, outcomes = stock.reserve(_purifier(stock=3), ["r1", "r1"], now=NOW)
    assert outcomes == {"r1": RESERVED}
    assert status is not None
    assert status.holders == ["r1"]
    assert status.allocated == 1


def test_batch_is_served_in_order_as_far_as_stock_allows() -> None:
    obj = _purifier(stock=3, holders=["a"])
    status, outcomes = stock.reserve(obj, ["z", "m", "b", "c"], now=NOW)
    assert outcomes == {"z": RESERVED, "m": RESERVED, "b": OUT, "c": OUT}
    assert status is not None
    assert status.holders == ["a", "m", "z"]  # stored sorted
    assert (status.allocated, status.available) == (3, 0)
    assert _ready(status) == ("True", "SoldOut")


def test_batch_with_an_existing_holder_does_not_spend_a_unit_on_it() -> None:
    obj = _purifier(stock=2, holders=["a"])
    status, outcomes = stock.reserve(obj, ["a", "b", "c"], now=NOW)
    assert outcomes == {"a": RESERVED, "b": RESERVED, "c": OUT}
    assert status is not None
    assert status.holders == ["a", "b"]


def test_sold_out_refuses_newcomers_and_writes_nothing() -> None:
    obj = _purifier(stock=1, holders=["a"])
    status, outcomes = stock.reserve(obj, ["b"], now=LATER)
    assert outcomes == {"b": OUT}
    assert status is None


def test_zero_stock_refuses() -> None:
    status, outcomes = stock.reserve(_purifier(stock=0), ["r1"], now=NOW)
    assert outcomes == {"r1": OUT}
    assert status is None


def test_overcommitted_refuses_newcomers_but_keeps_holders() -> None:
    obj = _purifier(stock=1, holders=["a", "b", "c"])
    status, outcomes = stock.reserve(obj, ["a", "d"], now=LATER)
    assert outcomes == {"a": RESERVED, "d": OUT}
    assert status is None


def test_reserve_leaves_the_input_alone() -> None:
    obj = _purifier(stock=2)
    before = obj.model_copy(deep=True)
    stock.reserve(obj, ["r1", "r2"], now=NOW)
    assert obj == before


# --- release -------------------------------------------------------------------------------------------
def test_release_gives_the_unit_back() -> None:
    status = stock.release(_purifier(stock=2, holders=["a", "b"]), ["a"], now=LATER)
    assert status is not None
    assert (status.holders, status.allocated, status.available) == (["b"], 1, 1)
    assert _ready(status) == ("True", "InStock")


def test_release_of_a_non_holder_is_a_noop() -> None:
    assert stock.release(_purifier(stock=2, holders=["a"]), ["x"], now=LATER) is None


def test_release_is_idempotent() -> None:
    obj = _purifier(stock=2, holders=["a", "b"])
    once = _apply(obj, stock.release(obj, ["a"], now=LATER))
    assert stock.release(once, ["a"], now=LATER) is None


def test_release_several_at_once() -> None:
    status = stock.release(_purifier(stock=3, holders=["a", "b", "c"]), ["a", "c", "x"], now=LATER)
    assert status is not None
    assert status.holders == ["b"]


def test_release_ends_overcommit() -> None:
    obj = _purifier(stock=1, holders=["a", "b"])
    assert _ready(obj.status) == ("False", "Overcommitted")
    status = stock.release(obj, ["a"], now=LATER)
    assert status is not None
    assert (status.allocated, status.available) == (1, 0)
    assert _ready(status) == ("True", "SoldOut")
    assert status.conditions[0].last_transition_time == LATER  # False -> True


# --- summarize -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stock_", "holders", "allocated", "available", "ready"),
    [
        (3, [], 0, 3, ("True", "InStock")),
        (3, ["a"], 1, 2, ("True", "InStock")),
        (3, ["a", "b", "c"], 3, 0, ("True", "SoldOut")),
        (0, [], 0, 0, ("True", "SoldOut")),
        (2, ["a", "b", "c"], 3, 0, ("False", "Overcommitted")),
        (0, ["a"], 1, 0, ("False", "Overcommitted")),
    ],
)
def test_summarize(
    stock_: int, holders: list[str], allocated: int, available: int, ready: tuple[str, str]
) -> None:
    obj = _purifier(stock=stock_, summarized=False)
    status = stock.summarize(obj.spec, obj.status, holders, generation=5, now=NOW)
    assert (status.allocated, status.available) == (allocated, available)
    assert status.holders == sorted(holders)
    assert _ready(status) == ready
    assert status.observed_generation == 5
    assert status.conditions[0].observed_generation == 5


def test_summarize_deduplicates_holders() -> None:
    obj = _purifier(stock=3, summarized=False)
    status = stock.summarize(obj.spec, obj.status, ["b", "a", "b"], generation=1, now=NOW)
    assert (status.holders, status.allocated, status.available) == (["a", "b"], 2, 1)


def test_overcommitted_message_names_the_numbers() -> None:
    obj = _purifier(stock=1, holders=["a", "b", "c"])
    message = obj.status.conditions[0].message
    assert "stock 1" in message
    assert "3 units" in message


def test_lowering_stock_is_reported_without_dropping_anyone() -> None:
    """An administrator lowers spec.stock below allocated (generation 2): the holders stay."""
    obj = _purifier(stock=3, holders=["a", "b", "c"])
    lowered = obj.model_copy(
        update={
            "spec": obj.spec.model_copy(update={"stock": 1}),
            "metadata": obj.metadata.model_copy(update={"generation": 2}),
        }
    )
    status, outcomes = stock.reserve(lowered, ["a"], now=LATER)
    assert outcomes == {"a": RESERVED}
    assert status is not None
    assert status.holders == ["a", "b", "c"]
    assert (status.allocated, status.available) == (3, 0)
    assert _ready(status) == ("False", "Overcommitted")
    assert status.observed_generation == 2


def test_new_generation_is_written_even_when_the_holders_stay() -> None:
    obj = _purifier(stock=3, holders=["a"])
    raised = obj.model_copy(
        update={
            "spec": obj.spec.model_copy(update={"stock": 5}),
            "metadata": obj.metadata.model_copy(update={"generation": 2}),
        }
    )
    status = stock.release(raised, ["nobody"], now=LATER)
    assert status is not None
    assert (status.available, status.observed_generation) == (4, 2)


# --- property: over many random histories, stock is never exceeded --------------------------------------
@pytest.mark.parametrize("seed", range(40))
def test_random_histories_never_exceed_stock(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"r{i}" for i in range(12)]
    obj = _purifier(stock=rng.randint(0, 6))
    for step in range(150):
        choice = rng.random()
        if choice < 0.5:
            batch = rng.sample(names, rng.randint(1, 4))
            before = set(obj.status.holders)
            status, outcomes = stock.reserve(obj, batch, now=NOW)
            obj = _apply(obj, status)
            held = set(obj.status.holders)
            assert set(outcomes) == set(batch)
            for name in batch:
                assert (outcomes[name] is RESERVED) == (name in held), (seed, step, name)
            assert before <= held  # reserving never drops anyone
            if len(before) >= obj.spec.stock:
                assert held == before  # nothing free: nobody new
        elif choice < 0.85:
            leaving = rng.sample(names, rng.randint(1, 3))
            before = set(obj.status.holders)
            obj = _apply(obj, stock.release(obj, leaving, now=NOW))
            assert set(obj.status.holders) == before - set(leaving)
        else:
            new_stock = rng.randint(0, 6)
            obj = obj.model_copy(update={"spec": obj.spec.model_copy(update={"stock": new_stock})})
            obj = _apply(obj, stock.release(obj, [], now=NOW))

        status = obj.status
        assert status.allocated == len(status.holders) == len(set(status.holders))
        assert status.holders == sorted(status.holders)
        if obj.spec.stock >= status.allocated:
            assert status.available + status.allocated == obj.spec.stock
            assert _ready(status)[0] == "True"
        else:
            assert status.available == 0
            assert _ready(status) == ("False", "Overcommitted")


@pytest.mark.parametrize("seed", range(20))
def test_random_histories_without_stock_changes_never_exceed_stock(seed: int) -> None:
    rng = random.Random(1000 + seed)
    names = [f"r{i}" for i in range(10)]
    obj = _purifier(stock=rng.randint(0, 5))
    for _ in range(200):
        if rng.random() < 0.6:
            status, _ = stock.reserve(obj, rng.sample(names, rng.randint(1, 5)), now=NOW)
        else:
            status = stock.release(obj, rng.sample(names, rng.randint(1, 2)), now=NOW)
        obj = _apply(obj, status)
        assert len(obj.status.holders) <= obj.spec.stock
        assert obj.status.available == obj.spec.stock - obj.status.allocated


def test_settle_releases_before_reserving_so_a_returned_unit_serves_the_same_batch() -> None:
    full = _purifier(stock=2, holders=["a", "b"])
    status, outcomes = stock.settle(full, release=["a"], reserve=["c", "d"], now=NOW)
    assert status is not None
    assert status.holders == ["b", "c"]
    assert outcomes == {"c": stock.Outcome.RESERVED, "d": stock.Outcome.OUT_OF_STOCK}


def test_settle_with_nothing_to_change_writes_nothing() -> None:
    purifier = _purifier(stock=2, holders=["a"])
    status, outcomes = stock.settle(purifier, release=["zz"], reserve=["a"], now=NOW)
    assert status is None
    assert outcomes == {"a": stock.Outcome.RESERVED}
