"""reconcilers.stock: counted reservations never exceed stock, apply once however often retried, and the
journal of changes in flight is tidied once the rentals have recorded them."""

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
HOLDING, NOT_HOLDING, GONE = stock.Record.HOLDING, stock.Record.NOT_HOLDING, stock.Record.GONE
RESERVE, RELEASE = api_purifier.StockOperation.RESERVE, api_purifier.StockOperation.RELEASE


def _claim(name: str) -> stock.Claim:
    return stock.Claim(name, f"uid-{name}")


def _claims(*names: str) -> list[stock.Claim]:
    return [_claim(name) for name in names]


def _entry(name: str, operation: api_purifier.StockOperation) -> dict[str, str]:
    return {"rental": name, "uid": f"uid-{name}", "operation": operation.value}


def _purifier(
    *,
    stock_units: int = 3,
    allocated: int = 0,
    pending: list[dict[str, str]] | None = None,
    generation: int = 1,
    summarized: bool = True,
) -> api_purifier.Purifier:
    """A Purifier with `allocated` units counted and `pending` journaled (bare counts if not summarized)."""
    body: dict[str, Any] = {
        "metadata": {"name": "aquapure-300", "namespace": "shop", "generation": generation},
        "spec": {"model": "AquaPure 300", "monthlyFee": 89_700, "stock": stock_units},
        "status": {"allocated": allocated, "pending": pending or []},
    }
    parsed = api_purifier.Purifier.model_validate(body)
    if not summarized:
        return parsed
    status = stock.summarize(
        parsed.spec,
        parsed.status,
        allocated=allocated,
        pending=parsed.status.pending,
        generation=generation,
        now=NOW,
    )
    return parsed.model_copy(update={"status": status})


def _settle(
    obj: api_purifier.Purifier,
    *,
    release: list[str] = [],  # noqa: B006 - never mutated
    reserve: list[str] = [],  # noqa: B006
    records: dict[str, stock.Record] | None = None,
    now: datetime.datetime = NOW,
) -> tuple[api_purifier.PurifierStatus | None, dict[str, stock.Outcome]]:
    by_uid = {f"uid-{name}": record for name, record in (records or {}).items()}
    status, outcomes = stock.settle(
        obj, release=_claims(*release), reserve=_claims(*reserve), records=by_uid, now=now
    )
    return status, {uid.removeprefix("uid-"): outcome for uid, outcome in outcomes.items()}


def _apply(obj: api_purifier.Purifier, status: api_purifier.PurifierStatus | None) -> api_purifier.Purifier:
    return obj if status is None else obj.model_copy(update={"status": status})


def _pending(status: api_purifier.PurifierStatus) -> list[tuple[str, str]]:
    return [(change.rental, change.operation.value) for change in status.pending]


def _ready(status: api_purifier.PurifierStatus) -> tuple[str, str]:
    (ready,) = status.conditions
    assert ready.type == "Ready"
    return ready.status.value, ready.reason


# --- reserve -------------------------------------------------------------------------------------------
def test_reserve_counts_a_unit_and_journals_it() -> None:
    status, outcomes = _settle(_purifier(stock_units=2), reserve=["r1"])
    assert outcomes == {"r1": RESERVED}
    assert status is not None
    assert (status.allocated, status.available, _pending(status)) == (1, 1, [("r1", "Reserve")])
    assert _ready(status) == ("True", "InStock")


def test_a_retried_reservation_takes_nothing_more() -> None:
    obj = _purifier(stock_units=2, allocated=1, pending=[_entry("r1", RESERVE)])
    status, outcomes = _settle(obj, reserve=["r1"], records={"r1": NOT_HOLDING}, now=LATER)
    assert status is None  # nothing to write
    assert outcomes == {"r1": RESERVED}


def test_a_rental_that_records_its_unit_takes_nothing_more() -> None:
    obj = _purifier(stock_units=2, allocated=1)
    status, outcomes = _settle(obj, reserve=["r1"], records={"r1": HOLDING})
    assert status is None
    assert outcomes == {"r1": RESERVED}


def test_the_same_rental_twice_in_one_batch_holds_one_unit() -> None:
    status, outcomes = _settle(_purifier(stock_units=3), reserve=["r1", "r1"])
    assert outcomes == {"r1": RESERVED}
    assert status is not None
    assert (status.allocated, _pending(status)) == (1, [("r1", "Reserve")])


def test_batch_is_served_in_order_as_far_as_stock_allows() -> None:
    status, outcomes = _settle(_purifier(stock_units=3, allocated=1), reserve=["z", "m", "b", "c"])
    assert outcomes == {"z": RESERVED, "m": RESERVED, "b": OUT, "c": OUT}
    assert status is not None
    assert (status.allocated, status.available) == (3, 0)
    assert [name for name, _ in _pending(status)] == ["z", "m"]
    assert _ready(status) == ("True", "SoldOut")


def test_sold_out_refuses_newcomers_and_writes_nothing() -> None:
    obj = _purifier(stock_units=1, allocated=1)
    status, outcomes = _settle(obj, reserve=["r2"], records={"r2": NOT_HOLDING})
    assert status is None
    assert outcomes == {"r2": OUT}


def test_zero_stock_refuses() -> None:
    status, outcomes = _settle(_purifier(stock_units=0), reserve=["r1"])
    assert outcomes == {"r1": OUT}
    assert status is None


def test_overcommitted_refuses_newcomers_but_keeps_what_is_held() -> None:
    obj = _purifier(stock_units=1, allocated=3)
    status, outcomes = _settle(obj, reserve=["new"])
    assert outcomes == {"new": OUT}
    assert status is None
    assert obj.status.allocated == 3
    assert _ready(obj.status) == ("False", "Overcommitted")


def test_settle_leaves_the_input_alone() -> None:
    obj = _purifier(stock_units=2)
    before = obj.model_copy(deep=True)
    _settle(obj, reserve=["r1", "r2"])
    assert obj == before


# --- release -------------------------------------------------------------------------------------------
def test_release_of_a_recorded_unit_gives_it_back_and_journals_it() -> None:
    obj = _purifier(stock_units=2, allocated=2)
    status, _ = _settle(obj, release=["r1"], records={"r1": HOLDING})
    assert status is not None
    assert (status.allocated, status.available, _pending(status)) == (1, 1, [("r1", "Release")])


def test_a_retried_release_gives_nothing_more_back() -> None:
    obj = _purifier(stock_units=2, allocated=1, pending=[_entry("r1", RELEASE)])
    status, _ = _settle(obj, release=["r1"], records={"r1": HOLDING})
    assert status is None


def test_release_of_an_unrecorded_reservation_undoes_it_without_a_trace() -> None:
    obj = _purifier(stock_units=2, allocated=1, pending=[_entry("r1", RESERVE)])
    status, _ = _settle(obj, release=["r1"], records={"r1": NOT_HOLDING})
    assert status is not None
    assert (status.allocated, status.pending) == (0, [])


def test_release_of_a_rental_that_holds_nothing_is_a_noop() -> None:
    obj = _purifier(stock_units=2, allocated=1)
    for record in (NOT_HOLDING, GONE, stock.Record.UNKNOWN):
        status, _ = _settle(obj, release=["zz"], records={"zz": record})
        assert status is None, record


def test_release_ends_overcommit() -> None:
    obj = _purifier(stock_units=1, allocated=2)
    status, _ = _settle(obj, release=["a"], records={"a": HOLDING})
    assert status is not None
    assert (status.allocated, status.available) == (1, 0)
    assert _ready(status) == ("True", "SoldOut")


def test_settle_releases_before_reserving_so_a_returned_unit_serves_the_same_batch() -> None:
    full = _purifier(stock_units=2, allocated=2)
    status, outcomes = _settle(full, release=["a"], reserve=["c", "d"], records={"a": HOLDING})
    assert status is not None
    assert outcomes == {"c": RESERVED, "d": OUT}
    assert (status.allocated, _pending(status)) == (2, [("a", "Release"), ("c", "Reserve")])


# --- the journal is tidied -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("operation", "record", "kept", "allocated"),
    [
        (RESERVE, HOLDING, False, 1),  # recorded: the count carries it
        (RESERVE, NOT_HOLDING, True, 1),  # not recorded yet: its rental will
        (RESERVE, stock.Record.UNKNOWN, True, 1),
        (RESERVE, GONE, False, 0),  # the rental vanished before recording: the unit comes back
        (RELEASE, NOT_HOLDING, False, 1),
        (RELEASE, GONE, False, 1),
        (RELEASE, HOLDING, True, 1),  # its rental still records the unit: keep the release
        (RELEASE, stock.Record.UNKNOWN, True, 1),
    ],
)
def test_journal_entries_go_once_their_rentals_record_the_outcome(
    operation: api_purifier.StockOperation, record: stock.Record, kept: bool, allocated: int
) -> None:
    obj = _purifier(stock_units=3, allocated=1, pending=[_entry("r1", operation)])
    status, _ = _settle(obj, records={"r1": record})
    after = _apply(obj, status).status
    assert (bool(after.pending), after.allocated) == (kept, allocated)
    assert (status is None) == kept  # tidying is a change worth writing only when something goes


def test_holds_reads_the_journal_before_the_rentals_record() -> None:
    status = _purifier(allocated=2, pending=[_entry("a", RESERVE), _entry("b", RELEASE)]).status
    assert stock.holds(status, "uid-a", recorded=False)
    assert not stock.holds(status, "uid-b", recorded=True)
    assert stock.holds(status, "uid-c", recorded=True)
    assert not stock.holds(status, "uid-c", recorded=False)


# --- summarize -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("units", "allocated", "available", "ready"),
    [
        (3, 0, 3, ("True", "InStock")),
        (3, 2, 1, ("True", "InStock")),
        (3, 3, 0, ("True", "SoldOut")),
        (0, 0, 0, ("True", "SoldOut")),
        (1, 3, 0, ("False", "Overcommitted")),
    ],
)
def test_summarize(units: int, allocated: int, available: int, ready: tuple[str, str]) -> None:
    obj = _purifier(stock_units=units, summarized=False)
    status = stock.summarize(obj.spec, obj.status, allocated=allocated, pending=[], generation=4, now=NOW)
    assert (status.allocated, status.available, status.observed_generation) == (allocated, available, 4)
    assert _ready(status) == ready


def test_overcommitted_message_names_the_numbers() -> None:
    obj = _purifier(stock_units=1, allocated=3)
    (ready,) = obj.status.conditions
    assert "stock 1" in ready.message and "3 units" in ready.message


def test_lowering_stock_is_reported_without_dropping_anyone() -> None:
    obj = _purifier(stock_units=3, allocated=3)
    lowered = obj.model_copy(
        update={
            "spec": obj.spec.model_copy(update={"stock": 1}),
            "metadata": obj.metadata.model_copy(update={"generation": 2}),
        }
    )
    status, _ = _settle(lowered)
    assert status is not None
    assert (status.allocated, status.available, status.observed_generation) == (3, 0, 2)
    assert _ready(status) == ("False", "Overcommitted")


def test_a_new_generation_is_written_even_when_the_counts_stay() -> None:
    obj = _purifier(stock_units=4, allocated=0)
    bumped = obj.model_copy(update={"metadata": obj.metadata.model_copy(update={"generation": 2})})
    status, _ = _settle(bumped)
    assert status is not None
    assert (status.available, status.observed_generation) == (4, 2)


def test_settle_with_nothing_to_change_writes_nothing() -> None:
    obj = _purifier(stock_units=2, allocated=1)
    status, outcomes = _settle(obj, release=["zz"], reserve=["a"], records={"a": HOLDING})
    assert status is None
    assert outcomes == {"a": RESERVED}


# --- property: random histories with crashes keep the count equal to the holders -------------------------
@pytest.mark.parametrize("seed", range(40))
def test_random_histories_with_lost_records_keep_the_count_exact(seed: int) -> None:
    """Rentals reserve and release in batches; after each write a random subset records the outcome
    (the others crash before their status write and retry later). At every step the count equals the
    rentals that hold a unit, and never exceeds stock unless stock was lowered."""
    rng = random.Random(seed)
    names = [f"r{i}" for i in range(12)]
    recorded: dict[str, bool] = dict.fromkeys(names, False)
    obj = _purifier(stock_units=rng.randint(0, 6))

    def records() -> dict[str, stock.Record]:
        return {name: HOLDING if recorded[name] else NOT_HOLDING for name in names}

    def holding() -> set[str]:
        return {n for n in names if stock.holds(obj.status, f"uid-{n}", recorded=recorded[n])}

    lowered = False
    for step in range(200):
        choice = rng.random()
        before = holding()
        if choice < 0.45:
            batch = rng.sample(names, rng.randint(1, 4))
            status, outcomes = _settle(obj, reserve=batch, records=records())
            obj = _apply(obj, status)
            for name in batch:
                assert (outcomes[name] is RESERVED) == (name in holding()), (seed, step, name)
            assert before <= holding()  # reserving never takes a unit from anyone
            if len(before) >= obj.spec.stock:
                assert holding() == before  # nothing free: nobody new
        elif choice < 0.8:
            leaving = rng.sample(names, rng.randint(1, 3))
            obj = _apply(obj, _settle(obj, release=leaving, records=records())[0])
            assert holding() == before - set(leaving)
        elif choice < 0.92:
            new_stock = rng.randint(0, 6)
            lowered = lowered or new_stock < obj.status.allocated
            obj = obj.model_copy(update={"spec": obj.spec.model_copy(update={"stock": new_stock})})
            obj = _apply(obj, _settle(obj, records=records())[0])
        # Some rentals record what they now hold; the rest crashed before their status write.
        for name in names:
            if rng.random() < 0.5:
                recorded[name] = stock.holds(obj.status, f"uid-{name}", recorded=recorded[name])

        status = obj.status
        assert status.allocated == len(holding()), (seed, step)
        assert len({change.uid for change in status.pending}) == len(status.pending)
        if not lowered:
            assert status.allocated <= obj.spec.stock
        if obj.spec.stock >= status.allocated:
            assert status.available + status.allocated == obj.spec.stock
        else:
            assert status.available == 0
            assert _ready(status) == ("False", "Overcommitted")


# --- transfer: the unit becomes the customer's at the end of a paid-up term -----------------------------
TRANSFER = api_purifier.StockOperation.TRANSFER


def _transfer(
    obj: api_purifier.Purifier, names: list[str], records: dict[str, stock.Record]
) -> api_purifier.PurifierStatus | None:
    by_uid = {f"uid-{name}": record for name, record in records.items()}
    status, _ = stock.settle(obj, release=[], reserve=[], transfer=_claims(*names), records=by_uid, now=NOW)
    return status


def test_a_transfer_moves_the_unit_from_allocated_to_transferred_for_good() -> None:
    obj = _purifier(stock_units=3, allocated=2)
    status = _transfer(obj, ["kim"], {"kim": HOLDING, "lee": HOLDING})
    assert status is not None
    assert (status.allocated, status.transferred, status.available) == (1, 1, 1)
    assert [(c.rental, c.operation) for c in status.pending] == [("kim", TRANSFER)]
    assert not stock.holds(status, "uid-kim", recorded=True)


def test_a_retried_transfer_changes_nothing() -> None:
    obj = _apply(
        _purifier(stock_units=3, allocated=2),
        _transfer(_purifier(stock_units=3, allocated=2), ["kim"], {"kim": HOLDING}),
    )
    assert _transfer(obj, ["kim"], {"kim": HOLDING}) is None
    # Recorded by the rental (StockReserved False): the entry goes, the count stays.
    tidied = _transfer(obj, [], {"kim": NOT_HOLDING})
    assert tidied is not None
    assert (tidied.allocated, tidied.transferred, tidied.pending) == (1, 1, [])
    assert _transfer(_apply(obj, tidied), ["kim"], {"kim": NOT_HOLDING}) is None


def test_a_transferred_unit_never_comes_back_even_when_its_rental_is_deleted() -> None:
    obj = _apply(
        _purifier(stock_units=1, allocated=1),
        _transfer(_purifier(stock_units=1, allocated=1), ["kim"], {"kim": HOLDING}),
    )
    status, outcomes = _settle(obj, reserve=["lee"], records={"kim": GONE})
    assert status is not None
    assert (status.allocated, status.transferred, status.available, status.pending) == (0, 1, 0, [])
    assert outcomes == {"lee": OUT}


def test_transferred_units_count_against_stock() -> None:
    obj = _purifier(stock_units=2, allocated=1)
    obj = obj.model_copy(update={"status": obj.status.model_copy(update={"transferred": 1})})
    status = stock.summarize(obj.spec, obj.status, allocated=1, pending=[], generation=1, now=NOW)
    assert (status.available, status.transferred) == (0, 1)
    lowered = obj.spec.model_copy(update={"stock": 1})
    overcommitted = stock.summarize(lowered, obj.status, allocated=1, pending=[], generation=2, now=NOW)
    ready = overcommitted.conditions[0]
    assert (ready.status, ready.reason) == ("False", "Overcommitted")
    assert "1 units now owned by customers" in (ready.message or "")
