"""The chaos runner at small scale: no crash, restart or partner fault breaks an invariant.

60 rentals over four Purifiers with limited stock, some cancelled or deleted, while the operator is
SIGKILLed ten times, etcd, kube-apiserver and kube-controller-manager (the garbage collector of
deleted Rentals' Payments and Deliveries) are killed and restarted once each, and the gateway
answers 503 to 30% of requests, adds latency spikes longer than the payment timeout and goes down
for a while. The run has a control plane of its own, since it restarts components that the
session's other tests share. The figures are printed, never asserted on time; the full-size run
and its figures are in docs/reliability.md (`scripts/chaos`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rental_devenv import chaos, controlplane

pytestmark = [pytest.mark.chaos, pytest.mark.cluster]

# Fixed, so a red run replays with `scripts/chaos --rentals 60 --kills 10 --seed 11`.
SETTINGS = chaos.Settings(rentals=60, kills=10, seed=11, time_limit=240)


def test_kills_restarts_and_partner_faults_break_no_invariant(tmp_path: Path) -> None:
    plane = controlplane.ControlPlane(directory=tmp_path / "controlplane")
    try:
        plane.start()
        chaos.install_crds(plane.kubeconfig)
        figures = chaos.run(SETTINGS, plane, tmp_path)
    finally:
        plane.stop()
    print(figures.summary())

    # The storm happened as scheduled (else a green run would prove nothing) ...
    assert figures.kills == SETTINGS.kills
    assert figures.restarts == {"etcd": 1, "kube-apiserver": 1, "kube-controller-manager": 1}
    assert {"error", "spike"} <= set(figures.faults_injected), figures.faults_injected
    assert {"outage", "drop"} & set(figures.faults_injected), figures.faults_injected
    interrupting = [count for count in figures.in_flight_at_kills if count > 0]
    assert len(interrupting) >= SETTINGS.kills // 2, figures.in_flight_at_kills  # kills cut into work
    assert figures.cancels and figures.deletes
    # ... every resting phase was reached by some rental ...
    assert {"Confirmed", "Cancelled", "Rejected"} <= set(figures.phases), figures.phases
    assert "OutOfStock" in figures.rejected_reasons, figures.rejected_reasons
    # ... and nothing was charged twice, lost, oversold, texted twice or left behind.
    assert figures.quiescent, f"not at rest within the time limit: {figures.violations[:5]}"
    assert figures.violations == [], "\n".join(figures.violations)
