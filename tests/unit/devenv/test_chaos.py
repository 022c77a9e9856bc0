"""The chaos runner's schedule: replayable from its seed, bounded, and holding every disruption asked for."""

from __future__ import annotations

import collections
import itertools

import pytest

from rental_devenv import chaos


def test_the_same_seed_replays_the_same_schedule_and_another_does_not() -> None:
    settings = chaos.Settings(rentals=50, kills=10, seed=3)
    assert chaos.schedule(settings) == chaos.schedule(settings)
    assert chaos.schedule(settings) != chaos.schedule(chaos.Settings(rentals=50, kills=10, seed=4))


def test_every_rental_is_applied_once_and_touched_only_after() -> None:
    events = chaos.schedule(chaos.Settings(rentals=200, kills=10, seed=1))
    applied = {e.target: e.at for e in events if e.action == "apply"}
    assert len(applied) == 200
    for event in events:
        if event.action in ("cancel", "delete"):
            assert event.at > applied[event.target]
    deletes = [e for e in events if e.action == "delete"]
    assert len({e.target for e in deletes}) == len(deletes), "a rental is deleted at most once"


def test_the_fates_and_kinds_of_rental_come_in_the_asked_proportions() -> None:
    events = chaos.schedule(chaos.Settings(rentals=2000, kills=10, seed=5))
    fates = collections.Counter(e.action for e in events)
    assert 0.15 < fates["cancel"] / 2000 < 0.25  # cancelled, and cancelled then deleted
    assert 0.11 < fates["delete"] / 2000 < 0.19
    applies = [e for e in events if e.action == "apply"]
    assert 0.03 < sum(e.customer.startswith("decline-") for e in applies) / 2000 < 0.07
    assert 0.005 < sum(e.purifier == "model-unknown" for e in applies) / 2000 < 0.04
    assert {e.months for e in applies} == set(range(1, 25))


def test_kills_restarts_and_the_outage_fit_the_window_in_order() -> None:
    settings = chaos.Settings(rentals=60, kills=10, seed=11)
    events = chaos.schedule(settings)
    assert [e.at for e in events] == sorted(e.at for e in events)
    kills = [e.at for e in events if e.action == "kill"]
    assert len(kills) == 10
    assert all(later - earlier >= 4.0 for earlier, later in itertools.pairwise(kills))
    assert all(0 < at <= settings.chaos_seconds for at in kills)
    restarts = sorted(e.target for e in events if e.action == "restart")
    assert restarts == ["etcd", "kube-apiserver", "kube-controller-manager"]
    outage = [e for e in events if e.action.startswith("outage")]
    assert [e.action for e in outage] == ["outage", "outage-drop", "outage-end"]
    assert outage[-1].at - outage[0].at == pytest.approx(settings.outage_seconds)


def test_the_controller_manager_restart_moves_no_other_event_of_a_seed() -> None:
    with_it = chaos.schedule(chaos.Settings(rentals=60, kills=10, seed=11))
    without = chaos.schedule(chaos.Settings(rentals=60, kills=10, seed=11, restart_controller_manager=False))
    assert [e for e in with_it if e.target != "kube-controller-manager"] == without
    (restart,) = [e for e in with_it if e.target == "kube-controller-manager"]
    assert restart.action == "restart" and 1.0 <= restart.pause <= 4.0


def test_the_window_grows_with_the_kills_and_the_rentals() -> None:
    assert chaos.Settings(rentals=60, kills=10).chaos_seconds == 80
    assert chaos.Settings(rentals=1000, kills=10).chaos_seconds == 300
    assert chaos.Settings(window=30).chaos_seconds == 30


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"rentals": 0}, "--rentals"),
        ({"kills": -1}, "--kills"),
        ({"time_limit": 0}, "--time-limit"),
        ({"cancel_fraction": 0.9, "delete_fraction": 0.5}, "fractions"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(changes: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        chaos.Settings(**changes)
