"""The SQLite ledger: records, transitions, lazy auto-delivery, persistence, thread safety."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rental_gateway import ledger, lifecycle, models


class FakeClock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> Iterator[ledger.Ledger]:
    opened = ledger.Ledger(":memory:", auto_advance_seconds=10.0, clock=clock)
    yield opened
    opened.close()


def _pay(store: ledger.Ledger, *, reason: str | None = None, reference: str = "rent-1") -> models.Payment:
    return store.create_payment(
        amount=120_000, currency="KRW", customer_id="c-1", reference=reference, declined_reason=reason
    )


def test_a_payment_is_stored_as_approved_and_read_back(store: ledger.Ledger, clock: FakeClock) -> None:
    payment = _pay(store)
    assert payment.id.startswith("pay_")
    assert store.get_payment(payment.id) == payment
    assert payment.status is lifecycle.PaymentStatus.APPROVED
    assert payment.created_at == clock.now
    assert payment.to_json()["createdAt"] == "2027-01-15T08:00:00.000Z"
    assert "reason" not in payment.to_json()


def test_a_declined_payment_keeps_its_reason(store: ledger.Ledger) -> None:
    payment = _pay(store, reason="card_declined")
    assert store.get_payment(payment.id).status is lifecycle.PaymentStatus.DECLINED
    assert payment.to_json()["reason"] == "card_declined"


def test_refund_happens_once(store: ledger.Ledger, clock: FakeClock) -> None:
    payment = _pay(store)
    clock.advance(5)
    first = store.refund_payment(payment.id)
    clock.advance(5)
    second = store.refund_payment(payment.id)
    assert first.status is lifecycle.PaymentStatus.REFUNDED
    assert first.refunded_at == payment.created_at + 5
    assert second == first


def test_refund_of_a_declined_payment_is_refused(store: ledger.Ledger) -> None:
    payment = _pay(store, reason="card_declined")
    with pytest.raises(lifecycle.TransitionError):
        store.refund_payment(payment.id)
    assert store.get_payment(payment.id).status is lifecycle.PaymentStatus.DECLINED


@pytest.mark.parametrize(
    "read",
    [
        ledger.Ledger.get_payment,
        ledger.Ledger.refund_payment,
        ledger.Ledger.get_shipment,
        ledger.Ledger.cancel_shipment,
        ledger.Ledger.return_shipment,
        ledger.Ledger.advance_shipment,
    ],
)
def test_unknown_ids_are_not_found(store: ledger.Ledger, read: object) -> None:
    with pytest.raises(ledger.NotFoundError, match="not found"):
        read(store, "nope")  # type: ignore[operator]


def test_shipments_deliver_lazily_stamped_when_due(store: ledger.Ledger, clock: FakeClock) -> None:
    shipment = store.create_shipment(reference="rent-1", address="Seoul", item="AQ-100")
    assert shipment.status is lifecycle.ShipmentStatus.SHIPPING
    clock.advance(9.9)
    assert store.get_shipment(shipment.id).status is lifecycle.ShipmentStatus.SHIPPING
    clock.advance(100)
    delivered = store.get_shipment(shipment.id)
    assert delivered.status is lifecycle.ShipmentStatus.DELIVERED
    assert delivered.delivered_at == shipment.created_at + 10


def test_a_return_comes_back_after_the_same_delay(store: ledger.Ledger, clock: FakeClock) -> None:
    shipment = store.create_shipment(reference="rent-1", address="Seoul", item="AQ-100")
    clock.advance(20)
    returning = store.return_shipment(shipment.id)
    assert returning.status is lifecycle.ShipmentStatus.RETURNING
    assert returning.return_requested_at == clock.now
    clock.advance(10)
    returned = store.get_shipment(shipment.id)
    assert returned.status is lifecycle.ShipmentStatus.RETURNED
    assert returned.returned_at == clock.now
    assert store.return_shipment(shipment.id) == returned


def test_cancel_before_delivery_and_not_after(store: ledger.Ledger, clock: FakeClock) -> None:
    early = store.create_shipment(reference="a", address="Seoul", item="AQ-100")
    late = store.create_shipment(reference="b", address="Busan", item="AQ-100")
    cancelled = store.cancel_shipment(early.id)
    assert cancelled.status is lifecycle.ShipmentStatus.CANCELLED
    clock.advance(60)
    assert store.cancel_shipment(early.id) == cancelled  # stays cancelled, never delivered
    with pytest.raises(lifecycle.TransitionError, match="delivered"):
        store.cancel_shipment(late.id)
    with pytest.raises(lifecycle.TransitionError):
        store.return_shipment(early.id)


def test_auto_delivery_can_be_switched_off(clock: FakeClock) -> None:
    store = ledger.Ledger(":memory:", auto_advance_seconds=0, clock=clock)
    shipment = store.create_shipment(reference="a", address="Seoul", item="AQ-100")
    clock.advance(10_000)
    assert store.get_shipment(shipment.id).status is lifecycle.ShipmentStatus.SHIPPING
    assert store.advance_shipment(shipment.id).status is lifecycle.ShipmentStatus.DELIVERED
    assert store.return_shipment(shipment.id).status is lifecycle.ShipmentStatus.RETURNING
    assert store.advance_shipment(shipment.id).status is lifecycle.ShipmentStatus.RETURNED
    with pytest.raises(lifecycle.TransitionError):
        store.advance_shipment(shipment.id)
    store.close()


def test_the_ledger_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "ledger.sqlite3"
    first = ledger.Ledger(path)
    payment = _pay(first)
    message = first.create_message(to="+821012345678", text="hi", reference="rent-1")
    first.store_response(
        models.StoredResponse(
            scope="payments", key="k", fingerprint="f", status=201, body=b"{}", created_at=1.0
        )
    )
    first.close()
    second = ledger.Ledger(path)
    assert second.get_payment(payment.id) == payment
    assert second.listing({"id": message.id})["messages"] == [message.to_json()]
    assert second.find_response("payments", "k") == models.StoredResponse(
        scope="payments", key="k", fingerprint="f", status=201, body=b"{}", created_at=1.0
    )
    second.close()


def test_listing_filters_each_table_by_the_fields_it_has(store: ledger.Ledger) -> None:
    mine = _pay(store, reference="rent-1")
    _pay(store, reference="rent-2")
    shipment = store.create_shipment(reference="rent-1", address="Seoul", item="AQ-100")
    store.create_message(to="+821012345678", text="hello", reference="rent-1")
    by_reference = store.listing({"reference": "rent-1"})
    assert [row["id"] for row in by_reference["payments"]] == [mine.id]
    assert [row["id"] for row in by_reference["shipments"]] == [shipment.id]
    assert len(by_reference["messages"]) == 1
    by_customer = store.listing({"customerId": "c-1"})
    assert len(by_customer["payments"]) == 2
    assert by_customer["shipments"] == by_customer["messages"] == []
    with pytest.raises(ValueError, match="unknown filter 'colour'"):
        store.listing({"colour": "blue"})


def test_reset_forgets_everything(store: ledger.Ledger) -> None:
    _pay(store)
    store.create_shipment(reference="a", address="Seoul", item="AQ-100")
    store.store_response(
        models.StoredResponse(scope="sms", key="k", fingerprint="f", status=202, body=b"{}", created_at=1.0)
    )
    store.reset()
    assert store.counts() == {"payments": 0, "shipments": 0, "messages": 0, "idempotency": 0}


def test_a_failed_transaction_leaves_nothing_behind(store: ledger.Ledger) -> None:
    with pytest.raises(RuntimeError), store.atomic():
        _pay(store)
        with store.atomic():  # nested: joins the outer transaction
            store.create_message(to="+821012345678", text="hello", reference="rent-1")
        raise RuntimeError("effect failed half-way")
    assert store.counts()["payments"] == store.counts()["messages"] == 0


def test_threads_share_one_ledger(tmp_path: Path) -> None:
    store = ledger.Ledger(tmp_path / "ledger.sqlite3")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                payment = _pay(store)
                store.refund_payment(payment.id)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.counts()["payments"] == 200
    assert {row["status"] for row in store.listing()["payments"]} == {"refunded"}
    store.close()
