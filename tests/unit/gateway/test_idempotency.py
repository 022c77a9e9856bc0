"""The Idempotency-Key rule: one effect per key, the first answer replayed, a different request refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from rental_gateway import idempotency, ledger, wire


@pytest.fixture
def store() -> Iterator[ledger.Ledger]:
    opened = ledger.Ledger(":memory:")
    yield opened
    opened.close()


class CountingHandler:
    def __init__(self, response: wire.Response) -> None:
        self.response = response
        self.calls = 0

    def __call__(self) -> wire.Response:
        self.calls += 1
        return self.response


def _run(
    store: ledger.Ledger, handler: CountingHandler, *, key: str = "k-1", fingerprint: str = "f-1"
) -> wire.Response:
    return idempotency.run_once(
        store, scope="payments", key=key, request_fingerprint=fingerprint, handler=handler
    )


def test_the_first_answer_is_replayed_byte_for_byte(store: ledger.Ledger) -> None:
    handler = CountingHandler(wire.Response.json(201, {"id": "pay_1", "status": "approved"}))
    first = _run(store, handler)
    again = _run(store, handler)
    assert handler.calls == 1
    assert (again.status, again.body) == (first.status, first.body)
    assert again.headers == {idempotency.REPLAY_HEADER: "true"}
    assert idempotency.REPLAY_HEADER not in first.headers


def test_the_same_key_for_a_different_request_is_a_conflict(store: ledger.Ledger) -> None:
    handler = CountingHandler(wire.Response.json(201, {"id": "pay_1"}))
    _run(store, handler)
    with pytest.raises(wire.HttpError) as raised:
        _run(store, handler, fingerprint="f-2")
    assert raised.value.status == 409
    assert handler.calls == 1


def test_keys_are_scoped_per_partner(store: ledger.Ledger) -> None:
    handler = CountingHandler(wire.Response.json(202, {"id": "msg_1"}))
    _run(store, handler)
    idempotency.run_once(store, scope="sms", key="k-1", request_fingerprint="other", handler=handler)
    assert handler.calls == 2


@pytest.mark.parametrize("status", [400, 404, 409, 503])
def test_answers_without_an_effect_are_not_remembered(store: ledger.Ledger, status: int) -> None:
    failing = CountingHandler(wire.HttpError(status, "no").to_response())
    _run(store, failing)
    succeeding = CountingHandler(wire.Response.json(201, {"id": "pay_1"}))
    assert _run(store, succeeding).status == 201
    assert succeeding.calls == 1


def test_a_raising_handler_leaves_no_record_and_no_effect(store: ledger.Ledger) -> None:
    def handler() -> wire.Response:
        store.create_message(to="+821012345678", text="hi", reference="r")
        raise wire.HttpError(404, "payment x not found")

    with pytest.raises(wire.HttpError):
        idempotency.run_once(store, scope="sms", key="k", request_fingerprint="f", handler=handler)
    assert store.counts() == {"payments": 0, "shipments": 0, "messages": 0, "idempotency": 0}


def test_racing_retries_cause_one_effect(store: ledger.Ledger) -> None:
    def handler() -> wire.Response:
        message = store.create_message(to="+821012345678", text="hi", reference="r")
        return wire.Response.json(202, {"id": message.id})

    answers: list[bytes] = []

    def retry() -> None:
        response = idempotency.run_once(store, scope="sms", key="k", request_fingerprint="f", handler=handler)
        answers.append(response.body)

    threads = [threading.Thread(target=retry) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.counts()["messages"] == 1
    assert len(set(answers)) == 1 and len(answers) == 16


def test_the_fingerprint_ignores_key_order_but_not_values_or_paths() -> None:
    base = idempotency.fingerprint("POST", "/v1/payments", {"amount": 1, "currency": "KRW"})
    assert base == idempotency.fingerprint("post", "/v1/payments", {"currency": "KRW", "amount": 1})
    assert base != idempotency.fingerprint("POST", "/v1/payments", {"amount": 2, "currency": "KRW"})
    assert base != idempotency.fingerprint("POST", "/v1/messages", {"amount": 1, "currency": "KRW"})


@pytest.mark.parametrize("raw", [None, "", "   ", "x" * 256])
def test_a_missing_or_oversized_key_is_a_bad_request(raw: str | None) -> None:
    with pytest.raises(wire.HttpError) as raised:
        idempotency.require_key(raw)
    assert raised.value.status == 400
    assert "Idempotency-Key" in raised.value.message


def test_a_key_is_taken_as_given_minus_surrounding_blanks() -> None:
    assert idempotency.require_key("  rental-1/charge ") == "rental-1/charge"
