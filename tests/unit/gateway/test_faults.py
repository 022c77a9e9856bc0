"""Fault settings (validation, partial updates) and the injector's decisions."""

from __future__ import annotations

import pytest

from rental_gateway import faults


def test_defaults_inject_nothing() -> None:
    injector = faults.FaultInjector()
    for partner in faults.PARTNERS:
        assert injector.decide(partner) == faults.Decision(faults.Action.PASS, 0.0)


def test_error_rate_one_always_fails_and_zero_never() -> None:
    injector = faults.FaultInjector(faults.FaultSettings(error_rate=1.0), seed=1)
    assert {injector.decide("payments").action for _ in range(50)} == {faults.Action.FAIL}
    injector.replace(faults.FaultSettings(error_rate=0.0))
    assert {injector.decide("payments").action for _ in range(50)} == {faults.Action.PASS}


def test_a_partial_error_rate_fails_about_that_often() -> None:
    injector = faults.FaultInjector(faults.FaultSettings(error_rate=0.3), seed=7)
    failures = sum(injector.decide("payments").action is faults.Action.FAIL for _ in range(2000))
    assert 450 < failures < 750


def test_latency_and_spikes_add_up() -> None:
    settings = faults.FaultSettings(latency_ms=50, spike_probability=1.0, spike_ms=200)
    assert faults.FaultInjector(settings).decide("sms").delay_seconds == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("outage", "action"), [("unavailable", faults.Action.FAIL), ("drop", faults.Action.DROP)]
)
def test_an_outage_wins_over_everything(outage: str, action: faults.Action) -> None:
    settings = faults.FaultSettings(outage=faults.Outage(outage), latency_ms=1000)
    assert faults.FaultInjector(settings).decide("shipping") == faults.Decision(action)


def test_faults_touch_only_the_chosen_partners() -> None:
    injector = faults.FaultInjector(faults.FaultSettings(error_rate=1.0, partners=frozenset({"payments"})))
    assert injector.decide("payments").action is faults.Action.FAIL
    assert injector.decide("shipping").action is faults.Action.PASS


def test_an_update_changes_only_the_named_fields() -> None:
    base = faults.FaultSettings(latency_ms=10)
    updated = base.updated({"errorRate": 1, "outage": True, "partners": ["sms"]})
    assert updated == faults.FaultSettings(
        error_rate=1.0, latency_ms=10, outage=faults.Outage.UNAVAILABLE, partners=frozenset({"sms"})
    )
    assert updated.updated({"outage": False}).outage is faults.Outage.OFF
    assert base.to_json() == {
        "errorRate": 0.0,
        "latencyMs": 10,
        "spikeProbability": 0.0,
        "spikeMs": 0,
        "outage": "off",
        "partners": ["payments", "shipping", "sms"],
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"errorRate": 1.5}, "errorRate"),
        ({"errorRate": "0.5"}, "errorRate"),
        ({"errorRate": True}, "errorRate"),
        ({"latencyMs": -1}, "latencyMs"),
        ({"latencyMs": 1.5}, "latencyMs"),
        ({"spikeProbability": -0.1}, "spikeProbability"),
        ({"outage": "sometimes"}, "outage"),
        ({"partners": ["bank"]}, "partners"),
        ({"partners": "payments"}, "partners"),
        ({"errorRat": 1}, "unknown field 'errorRat'"),
    ],
)
def test_a_bad_update_names_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        faults.FaultSettings().updated(changes)


def test_settings_built_directly_are_checked_too() -> None:
    with pytest.raises(ValueError, match="errorRate"):
        faults.FaultSettings(error_rate=2)
    with pytest.raises(ValueError, match="partners"):
        faults.FaultSettings(partners=frozenset({"bank"}))


def test_a_decision_names_the_faults_it_injects() -> None:
    quiet = faults.FaultInjector().decide("payments")
    assert quiet.injected == ()
    noisy = faults.FaultInjector(
        faults.FaultSettings(latency_ms=1, spike_probability=1.0, spike_ms=1, error_rate=1.0)
    ).decide("payments")
    assert noisy.injected == ("latency", "spike", "error")
    outage = faults.FaultInjector(faults.FaultSettings(outage=faults.Outage.UNAVAILABLE, error_rate=1.0))
    assert outage.decide("sms").injected == ("outage",)
    spared = faults.FaultInjector(faults.FaultSettings(error_rate=1.0, partners=frozenset({"payments"})))
    assert spared.decide("sms").injected == ()
