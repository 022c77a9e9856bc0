"""breakers: what counts as a failure, open/half-open/closed, one trial at a time, no serialization."""

from __future__ import annotations

import threading
import time

import pytest

from rental_operator.partners import breakers, errors


def fault(unknown: bool = True) -> errors.PartnerUnavailable:
    return errors.PartnerUnavailable("503", partner="payments", kind="server_error", outcome_unknown=unknown)


def rejection() -> errors.PartnerRejected:
    return errors.PartnerRejected("400", partner="payments", status_code=400, error="bad")


def failing(error: BaseException) -> object:
    raise error


def make(threshold: int = 3, reset: float = 0.2) -> tuple[breakers.Breaker, list[tuple[str, str]]]:
    changes: list[tuple[str, str]] = []
    breaker = breakers.Breaker(
        partner="payments",
        failure_threshold=threshold,
        reset_seconds=reset,
        on_state_change=lambda old, new: changes.append((old, new)),
    )
    return breaker, changes


def trip(breaker: breakers.Breaker) -> None:
    for _ in range(breaker.failure_threshold):
        with pytest.raises(errors.PartnerUnavailable):
            breaker.call(lambda: failing(fault()))


def test_it_opens_after_the_threshold_of_consecutive_faults() -> None:
    breaker, changes = make(threshold=3)
    for _ in range(2):
        with pytest.raises(errors.PartnerUnavailable):
            breaker.call(lambda: failing(fault()))
    assert breaker.state == "closed"
    original = fault()
    with pytest.raises(errors.PartnerUnavailable) as caught:
        breaker.call(lambda: failing(original))
    assert caught.value is original  # the tripping call still gets its own error (outcome_unknown)
    assert breaker.state == "open"
    assert changes == [("closed", "open")]


def test_answers_do_not_count_and_reset_the_count() -> None:
    breaker, _ = make(threshold=2)
    for _ in range(5):
        with pytest.raises(errors.PartnerUnavailable):
            breaker.call(lambda: failing(fault()))
        with pytest.raises(errors.PartnerRejected):
            breaker.call(lambda: failing(rejection()))
        with pytest.raises(errors.PartnerProtocolError):
            breaker.call(
                lambda: failing(errors.PartnerProtocolError("bad body", partner="payments", status_code=201))
            )
    assert breaker.state == "closed"


def test_an_answer_too_large_or_compressed_unasked_counts_like_a_fault() -> None:
    # A protocol error, but what a broken proxy or a hostile partner sends on every call.
    breaker, changes = make(threshold=2)
    for _ in range(2):
        with pytest.raises(errors.UnacceptableAnswer):
            breaker.call(
                lambda: failing(
                    errors.UnacceptableAnswer(
                        "too big", partner="payments", status_code=200, outcome_unknown=True
                    )
                )
            )
    assert breaker.state == "open"
    assert changes == [("closed", "open")]


def test_while_open_calls_fail_fast_without_running() -> None:
    breaker, _ = make(threshold=1, reset=30)
    trip(breaker)
    ran = []
    with pytest.raises(errors.BreakerOpen) as caught:
        breaker.call(lambda: ran.append(1))
    assert ran == []
    assert isinstance(caught.value, errors.PartnerUnavailable)
    assert not caught.value.outcome_unknown
    assert 29 < caught.value.retry_after <= 30
    assert "open" in str(caught.value)


def test_after_the_reset_time_a_successful_trial_closes_it() -> None:
    breaker, changes = make(threshold=1, reset=0.1)
    trip(breaker)
    time.sleep(0.15)
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state == "closed"
    assert changes == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]


def test_a_failed_trial_opens_it_again_for_another_reset_time() -> None:
    breaker, changes = make(threshold=2, reset=0.1)
    trip(breaker)
    time.sleep(0.15)
    with pytest.raises(errors.PartnerUnavailable):
        breaker.call(lambda: failing(fault()))
    assert breaker.state == "open"
    with pytest.raises(errors.BreakerOpen):
        breaker.call(lambda: "not run")
    assert changes[-2:] == [("open", "half-open"), ("half-open", "open")]


def test_a_rejected_trial_closes_it_the_partner_is_answering() -> None:
    breaker, _ = make(threshold=1, reset=0.1)
    trip(breaker)
    time.sleep(0.15)
    with pytest.raises(errors.PartnerRejected):
        breaker.call(lambda: failing(rejection()))
    assert breaker.state == "closed"


def test_half_open_admits_one_trial_at_a_time() -> None:
    breaker, _ = make(threshold=1, reset=0.1)
    trip(breaker)
    time.sleep(0.15)
    inside, release = threading.Event(), threading.Event()

    def trial() -> str:
        inside.set()
        release.wait(5)
        return "ok"

    thread = threading.Thread(target=breaker.call, args=(trial,))
    thread.start()
    assert inside.wait(5)
    assert breaker.state == "half-open"
    with pytest.raises(errors.BreakerOpen) as caught:
        breaker.call(lambda: "second")
    assert caught.value.retry_after == 0
    release.set()
    thread.join()
    assert breaker.state == "closed"
    assert breaker.call(lambda: "after") == "after"


def test_a_bug_inside_the_trial_releases_it_without_deciding() -> None:
    breaker, _ = make(threshold=1, reset=0.1)
    trip(breaker)
    time.sleep(0.15)
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    assert breaker.state == "half-open"
    assert breaker.call(lambda: "next trial") == "next trial"
    assert breaker.state == "closed"


def test_an_outcome_arriving_after_the_breaker_moved_on_is_not_counted() -> None:
    breaker, _ = make(threshold=1, reset=30)
    early = breaker.admit()  # a call admitted while closed, still in flight...
    trip(breaker)  # ...while others trip the breaker
    breaker.record(early, None)  # its late success does not close the breaker
    assert breaker.state == "open"


def test_calls_are_not_serialized_while_closed() -> None:
    breaker, _ = make()
    both_inside = threading.Barrier(2, timeout=5)

    def call() -> None:
        breaker.call(both_inside.wait)  # only returns when both calls are inside at once

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not both_inside.broken


def test_a_failing_listener_does_not_break_the_breaker(caplog: pytest.LogCaptureFixture) -> None:
    def listener(old: str, new: str) -> None:
        raise RuntimeError("gauge exploded")

    breaker = breakers.Breaker(
        partner="payments", failure_threshold=1, reset_seconds=30, on_state_change=listener
    )
    with pytest.raises(errors.PartnerUnavailable):
        breaker.call(lambda: failing(fault()))
    assert breaker.state == "open"
    assert "listener failed" in caplog.text


@pytest.mark.parametrize(("threshold", "reset"), [(0, 1.0), (1, 0.0)])
def test_nonsense_settings_are_refused(threshold: int, reset: float) -> None:
    with pytest.raises(ValueError):
        breakers.Breaker(partner="payments", failure_threshold=threshold, reset_seconds=reset)


def test_errors_that_are_not_the_partners_neither_count_nor_reset_the_count() -> None:
    breaker, _ = make(threshold=2)
    with pytest.raises(errors.PartnerUnavailable):
        breaker.call(lambda: failing(fault()))
    with pytest.raises(errors.PartnerError):
        breaker.call(lambda: failing(errors.PartnerError("bad configuration", partner="payments")))
    with pytest.raises(errors.PartnerUnavailable):
        breaker.call(lambda: failing(fault()))
    assert breaker.state == "open"


def test_once_the_reset_time_is_over_the_state_reads_half_open_and_invites_the_trial() -> None:
    breaker, changes = make(threshold=1, reset=0.1)
    trip(breaker)
    assert breaker.state == "open"
    time.sleep(0.15)
    # A caller that checks before calling must not wait forever for a call nobody makes.
    assert breaker.state == "half-open"
    assert changes == [("closed", "open"), ("open", "half-open")]
    assert breaker.call(lambda: "trial") == "trial"
    assert breaker.state == "closed"
