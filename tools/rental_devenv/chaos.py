"""The chaos runner: hundreds of rentals while everything that can crash does, then the invariants.

A crash must never charge twice, lose a rental or oversell. This runner shows it on the real parts:
it starts (or reuses) a control plane, the reference gateway and the operator as processes, then,
over a bounded window, applies rentals over a few Purifiers with limited stock (some are Rejected
OutOfStock, some for an unknown Purifier, some declined by the payment system), cancels and deletes
some at random, SIGKILLs the operator at random moments (restarting it each time), kills and
restarts etcd, kube-apiserver and kube-controller-manager once each, and makes the partner gateway
answer 503 to a share of requests, add latency spikes longer than the operator's timeout, and go
down for a while. Then it
clears the faults, waits (bounded) until nothing moves any more, and hands the API server's objects
and the gateway's ledger to `rental_devenv.invariants.check`. It prints the figures and exits 1 on
any violation.

Everything random comes from one seed, and the schedule is executed from one thread in a fixed
order, so `--seed` replays the same rentals, fates, kill moments and fault windows (the interleaving
with the operator's own threads is the machine's). Every loop is bounded in count and time.

    scripts/chaos --rentals 300 --kills 12 --seed 7 --time-limit 900 --json chaos.json

Called by `scripts/chaos` and by `tests/chaos/test_chaos.py` (`run`, at small scale).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import math
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import kubernetes

from rental_devenv import controlplane, invariants, testkit
from rental_gateway import testing

__all__ = ["Event", "Figures", "Settings", "main", "partner_env", "read_snapshot", "run", "schedule"]

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
KUBECTL = str(Path(sys.executable).parent / "kubectl")
# How long one call to the API server may take, and how long the runner keeps retrying one of its
# own writes (a restart of etcd or the API server takes seconds; a write that cannot land in a
# minute means the run is broken, not slow).
_CALL_TIMEOUT = 15
_WRITE_PATIENCE = 90.0


def log(message: str) -> None:
    print(f"[chaos] {message}", file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True)
class Settings:
    """What one run does. The defaults are the full-size run of docs/reliability.md."""

    rentals: int = 300
    kills: int = 12
    seed: int = 1
    time_limit: float = 900.0  # the whole run, start-up excluded; quiescence is cut off at this bound
    window: float | None = None  # seconds of chaos; default: room for every kill and restart
    purifiers: int = 4
    stock_fraction: float = 0.6  # units in stock across all purifiers, per rental applied
    cancel_fraction: float = 0.15
    delete_fraction: float = 0.10
    cancel_then_delete_fraction: float = 0.05
    unknown_purifier_fraction: float = 0.02
    declined_fraction: float = 0.05
    error_rate: float = 0.3
    spike_probability: float = 0.1
    spike_ms: int = 2500  # longer than the operator's 2 s payment timeout: the charge lands, the answer not
    outage_seconds: float = 15.0
    # Shorter than the outage, so rentals deferred by it expire (Rejected, DeferralExpired) and their
    # payments, whose outcome may be unknown after a timeout, must be settled and refunded.
    deferral_seconds: float = 8.0
    stall_seconds: float = 120.0  # stop waiting for quiescence when nothing changed for this long
    restart_etcd: bool = True
    restart_apiserver: bool = True
    restart_controller_manager: bool = True

    def __post_init__(self) -> None:
        if self.rentals < 1:
            raise ValueError("--rentals must be at least 1")
        if self.kills < 0:
            raise ValueError("--kills must be >= 0")
        if self.time_limit <= 0:
            raise ValueError("--time-limit must be > 0")
        if self.purifiers < 1:
            raise ValueError("--purifiers must be at least 1")
        fractions = (
            self.cancel_fraction + self.delete_fraction + self.cancel_then_delete_fraction,
            self.error_rate,
            self.spike_probability,
            self.stock_fraction,
        )
        if not all(0 <= value <= 1 for value in fractions):
            raise ValueError("fractions and rates must lie between 0 and 1 (cancel + delete fractions too)")

    @property
    def chaos_seconds(self) -> float:
        # A kill and restart of the operator takes a few seconds (start-up is Python imports and the
        # initial listing): give each kill about eight, and the rentals half a second each at least.
        return self.window if self.window is not None else max(60.0, 8.0 * self.kills, 0.3 * self.rentals)


@dataclasses.dataclass(frozen=True)
class Event:
    """One step of the schedule, `at` seconds into the chaos window."""

    at: float
    action: str  # apply, cancel, delete, kill, restart, outage, outage-drop, outage-end
    target: str = ""  # rental name, or component for a restart
    purifier: str = ""
    customer: str = ""
    pause: float = 0.0  # kill and restart: how long the process stays down
    months: int = 12  # apply: the contract term (one month's fee is charged at application)


def _purifier_names(settings: Settings) -> list[str]:
    return [f"model-{index}" for index in range(settings.purifiers)]


def schedule(settings: Settings) -> list[Event]:
    """The whole run as a list of events in time order, a pure function of the settings and seed."""
    rng = random.Random(settings.seed)
    window = settings.chaos_seconds
    purifiers = _purifier_names(settings)
    events: list[Event] = []
    width = len(str(settings.rentals))
    for index in range(settings.rentals):
        name = f"r-{index:0{width}d}"
        at = rng.uniform(0, 0.7 * window)
        roll = rng.random()
        purifier = "model-unknown" if roll < settings.unknown_purifier_fraction else rng.choice(purifiers)
        customer = f"decline-{index}" if rng.random() < settings.declined_fraction else f"c-{index}"
        events.append(Event(at, "apply", name, purifier, customer, months=rng.randint(1, 24)))
        fate = rng.random()
        later = at + rng.uniform(0.2, 15.0)
        if fate < settings.cancel_fraction:
            events.append(Event(later, "cancel", name))
        elif fate < settings.cancel_fraction + settings.delete_fraction:
            events.append(Event(later, "delete", name))
        elif (
            fate < settings.cancel_fraction + settings.delete_fraction + settings.cancel_then_delete_fraction
        ):
            events.append(Event(later, "cancel", name))
            events.append(Event(later + rng.uniform(0.5, 10.0), "delete", name))
    # Kills spread over the window with at least a few seconds between them, so each restarted
    # operator gets to do some work (and leave some half-done) before the next one.
    gap = 4.0
    spare = max(window - gap * (settings.kills + 1), 0.0)
    weights = [rng.random() for _ in range(settings.kills + 1)]
    moment = 0.0
    for weight in weights[:-1]:
        moment += gap + spare * weight / sum(weights)
        events.append(Event(moment, "kill", "operator", pause=rng.uniform(0.0, 2.0)))
    if settings.restart_etcd:
        events.append(Event(rng.uniform(0.25, 0.4) * window, "restart", "etcd", pause=rng.uniform(1.0, 4.0)))
    if settings.restart_apiserver:
        events.append(
            Event(rng.uniform(0.6, 0.75) * window, "restart", "kube-apiserver", pause=rng.uniform(1.0, 4.0))
        )
    if settings.outage_seconds > 0:
        start = rng.uniform(0.3, 0.5) * window
        events.append(Event(start, "outage"))
        events.append(Event(start + settings.outage_seconds / 2, "outage-drop"))
        events.append(Event(start + settings.outage_seconds, "outage-end"))
    if settings.restart_controller_manager:
        # Drawn last, so a seed's other events stay where they were before this restart was added.
        # Down, it collects no garbage: the Payments and Deliveries of deleted Rentals must still go.
        events.append(
            Event(
                rng.uniform(0.45, 0.55) * window,
                "restart",
                "kube-controller-manager",
                pause=rng.uniform(1.0, 4.0),
            )
        )
    return sorted(events, key=lambda event: event.at)


@dataclasses.dataclass
class Figures:
    """What a run did and found; printed, and written with --json."""

    seed: int
    rentals: int
    cancels: int = 0
    deletes: int = 0
    kills: int = 0
    # Rentals not at rest at each kill: work the kill interrupted (0 would mean it tested nothing).
    in_flight_at_kills: list[int] = dataclasses.field(default_factory=list)
    restarts: dict[str, int] = dataclasses.field(default_factory=dict)
    operator_starts: int = 0
    faults_injected: dict[str, int] = dataclasses.field(default_factory=dict)
    partner_requests: dict[str, int] = dataclasses.field(default_factory=dict)
    outage_seconds: float = 0.0
    chaos_seconds: float = 0.0
    quiescence_seconds: float | None = None
    quiescent: bool = False
    phases: dict[str, int] = dataclasses.field(default_factory=dict)
    rejected_reasons: dict[str, int] = dataclasses.field(default_factory=dict)
    ledger: dict[str, int] = dataclasses.field(default_factory=dict)
    violations: list[str] = dataclasses.field(default_factory=list)
    wall_seconds: float = 0.0
    machine: str = ""
    logs: dict[str, str] = dataclasses.field(default_factory=dict)

    def summary(self) -> str:
        quiet = f"{self.quiescence_seconds:.1f}s" if self.quiescence_seconds is not None else "not reached"
        lines = [
            f"seed {self.seed}: {self.rentals} rentals, {self.cancels} cancelled, {self.deletes} deleted",
            f"operator SIGKILLed {self.kills} times ({self.operator_starts} starts), rentals in flight at "
            f"each kill: {self.in_flight_at_kills}; restarts: "
            + (", ".join(f"{k} x{v}" for k, v in self.restarts.items()) or "none"),
            f"faults injected by the gateway: {json.dumps(self.faults_injected, sort_keys=True)}; "
            f"outage {self.outage_seconds:.0f}s; partner requests {json.dumps(self.partner_requests)}",
            f"chaos window {self.chaos_seconds:.0f}s; time to quiescence {quiet}",
            f"rentals at the end: {json.dumps(self.phases, sort_keys=True)}; "
            f"rejected: {json.dumps(self.rejected_reasons, sort_keys=True)}",
            f"ledger: {json.dumps(self.ledger, sort_keys=True)}",
            f"invariant violations: {len(self.violations)}",
            *(f"  {violation}" for violation in self.violations),
        ]
        return "\n".join(lines)


class _World:
    """The parts under test, and the runner's own (retried) writes to the API server."""

    def __init__(
        self,
        plane: controlplane.ControlPlane,
        gateway: testing.GatewayProcess,
        operator: testkit.OperatorProcess,
        namespace: str,
    ) -> None:
        self.plane = plane
        self.gateway = gateway
        self.operator = operator
        self.namespace = namespace
        self.cluster = testkit.Cluster(plane.kubeconfig, namespace)
        self._restarting: threading.Thread | None = None
        self.start_errors: list[str] = []

    # -- the runner's writes: retried across restarts, and idempotent on retry -------------------------
    def _write(self, what: str, call: Callable[[], T], *, done_if: int | None = None) -> T | None:
        deadline = time.monotonic() + _WRITE_PATIENCE
        while True:
            try:
                return call()
            except kubernetes.client.ApiException as error:
                if done_if is not None and error.status == done_if:
                    return None  # an earlier attempt landed although its answer was lost
                if error.status is not None and 400 <= error.status < 500 and error.status != 429:
                    raise
                problem: Exception = error
            except Exception as error:  # connection refused or reset while a component restarts
                problem = error
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: still failing after {_WRITE_PATIENCE:.0f}s: {problem}")
            time.sleep(0.5)

    def create(self, body: dict[str, Any]) -> None:
        plural = {"Purifier": "purifiers", "Rental": "rentals"}[body["kind"]]
        full = {"apiVersion": f"{testkit.GROUP}/{testkit.VERSION}", **body}
        self._write(
            f"create {body['metadata']['name']}",
            lambda: self.cluster.custom.create_namespaced_custom_object(
                testkit.GROUP, testkit.VERSION, self.namespace, plural, full, _request_timeout=_CALL_TIMEOUT
            ),
            done_if=409,
        )

    def cancel(self, name: str) -> None:
        self._write(
            f"cancel {name}",
            lambda: self.cluster.custom.patch_namespaced_custom_object(
                testkit.GROUP,
                testkit.VERSION,
                self.namespace,
                "rentals",
                name,
                {"spec": {"cancelled": True}},
                _content_type="application/merge-patch+json",
                _request_timeout=_CALL_TIMEOUT,
            ),
        )

    def delete(self, name: str) -> None:
        self._write(
            f"delete {name}",
            lambda: self.cluster.custom.delete_namespaced_custom_object(
                testkit.GROUP,
                testkit.VERSION,
                self.namespace,
                "rentals",
                name,
                _request_timeout=_CALL_TIMEOUT,
            ),
            done_if=404,
        )

    # -- disruptions --------------------------------------------------------------------------------------
    def settle_operator(self) -> None:
        """Wait for a restart in progress to finish (bounded by OperatorProcess.start's own timeout)."""
        if self._restarting is not None:
            self._restarting.join()
            self._restarting = None

    def kill_operator(self, pause: float) -> None:
        """SIGKILL now; start again after `pause` in the background, so rentals keep arriving meanwhile."""
        self.settle_operator()
        self.operator.kill()

        def restart() -> None:
            time.sleep(pause)
            for _ in range(3):
                try:
                    self.operator.start(timeout=120)
                    return
                except Exception as error:  # recorded and retried: a start can race a restarting API server
                    self.start_errors.append(str(error).splitlines()[0])
                    self.operator.kill()

        self._restarting = threading.Thread(target=restart, name="operator-restart", daemon=True)
        self._restarting.start()

    def restart_component(self, component: str, pause: float) -> None:
        # On the main thread: the control plane ties its children to the thread that starts them.
        self.settle_operator()
        self.plane.stop_component(component, kill=True)
        time.sleep(pause)
        self.plane.start_component(component)

    def faults(self, **changes: object) -> None:
        self.gateway.set_faults(**changes)

    # -- reading ------------------------------------------------------------------------------------------
    def in_flight(self) -> int:
        """How many rentals are not at rest right now (-1 if the API server did not answer)."""
        try:
            return sum(invariants.at_rest(rental) is not None for rental in _listed(self.cluster, "rentals"))
        except Exception:  # a figure, not a step: never let it stop the run
            return -1

    def snapshot(self, applied: set[str], deleted: set[str]) -> invariants.Snapshot:
        return read_snapshot(self.cluster, self.gateway, applied=applied, deleted=deleted)


def _listed(cluster: testkit.Cluster, plural: str) -> list[dict[str, Any]]:
    answer = cluster.custom.list_namespaced_custom_object(
        testkit.GROUP, testkit.VERSION, cluster.namespace, plural, _request_timeout=_CALL_TIMEOUT
    )
    return list(answer["items"])


def read_snapshot(
    cluster: testkit.Cluster,
    gateway: testing.GatewayProcess,
    *,
    applied: set[str] | None = None,
    deleted: set[str] | None = None,
) -> invariants.Snapshot:
    """What the invariant checker reads: the namespace's four kinds and the gateway's ledger."""
    return invariants.Snapshot(
        namespace=cluster.namespace,
        rentals=_listed(cluster, "rentals"),
        payments=_listed(cluster, "payments"),
        deliveries=_listed(cluster, "deliveries"),
        purifiers=_listed(cluster, "purifiers"),
        ledger=gateway.ledger(),
        applied=frozenset(applied) if applied is not None else None,
        deleted=frozenset(deleted or ()),
        # The operator bills calendar months and refunds within 14 days of delivery (pinned by
        # `run`), and a run lasts minutes: only period 1 is ever charged, and every
        # cancellation or deletion is a withdrawal.
        periods_due=1,
        within_withdrawal=True,
    )


def partner_env(gateway_url: str) -> dict[str, str]:
    """The operator's settings that point all three partner systems at one gateway."""
    return {
        "RENTAL_PAYMENT_URL": gateway_url,
        "RENTAL_SHIPPING_URL": gateway_url,
        "RENTAL_SMS_URL": gateway_url,
    }


def _rental_body(event: Event) -> dict[str, Any]:
    return testkit.rental(event.target, event.purifier, customer=event.customer, months=event.months)


def _execute(
    world: _World, events: list[Event], figures: Figures, deadline: float
) -> tuple[set[str], set[str]]:
    """Run the schedule in order on this thread; returns (applied, deleted) rental names."""
    applied: set[str] = set()
    deleted: set[str] = set()
    started = time.monotonic()
    outage_started: float | None = None
    # A restart in progress can delay the outage's start; its later steps move with it, so the
    # gateway stays down for the scheduled time however late it went down.
    outage_shift = 0.0
    for event in events:
        shift = outage_shift if event.action in ("outage-drop", "outage-end") else 0.0
        delay = started + event.at + shift - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if time.monotonic() > deadline:
            log("time limit reached during the chaos window; skipping the rest of the schedule")
            break
        match event.action:
            case "apply":
                world.create(_rental_body(event))
                applied.add(event.target)
            case "cancel" if event.target in applied and event.target not in deleted:
                world.cancel(event.target)
                figures.cancels += 1
            case "delete" if event.target in applied and event.target not in deleted:
                world.delete(event.target)
                deleted.add(event.target)
                figures.deletes += 1
            case "kill":
                figures.in_flight_at_kills.append(world.in_flight())
                world.kill_operator(event.pause)
                figures.kills += 1
                log(
                    f"t={time.monotonic() - started:5.1f}s SIGKILL #{figures.kills} (down {event.pause:.1f}s)"
                )
            case "restart":
                log(f"t={time.monotonic() - started:5.1f}s restarting {event.target} ({event.pause:.1f}s)")
                world.restart_component(event.target, event.pause)
                figures.restarts[event.target] = figures.restarts.get(event.target, 0) + 1
            case "outage":
                world.faults(outage="unavailable")
                outage_started = time.monotonic()
                outage_shift = max(0.0, outage_started - (started + event.at))
                log(f"t={time.monotonic() - started:5.1f}s gateway outage: every partner request 503")
            case "outage-drop":
                world.faults(outage="drop")
                log(f"t={time.monotonic() - started:5.1f}s gateway outage: connections dropped")
            case "outage-end":
                world.faults(outage="off")
                if outage_started is not None:
                    figures.outage_seconds += time.monotonic() - outage_started
                log(f"t={time.monotonic() - started:5.1f}s gateway outage over")
    figures.chaos_seconds = time.monotonic() - started
    return applied, deleted


def _wait_quiescent(
    world: _World, applied: set[str], deleted: set[str], deadline: float, stall: float
) -> tuple[invariants.Snapshot, float | None]:
    """Poll until nothing is left to settle: the snapshot, and how long it took (None: it did not).

    Bounded by `deadline`, and by `stall`: when the same objects stay unsettled that long with the
    faults cleared, they are stuck, not slow, and waiting longer only delays the verdict.
    """
    started = time.monotonic()
    last_report = 0.0
    last_change, last_pending = started, ""
    while True:
        try:
            snapshot = world.snapshot(applied, deleted)
            pending = invariants.unsettled(snapshot)
        except Exception as error:  # the API server may still be warming up after its restart
            log(f"reading the cluster failed: {error}")
            pending = [invariants.Violation("Cluster", world.namespace, invariants.Rule.AT_REST, str(error))]
        if not pending:
            return snapshot, time.monotonic() - started
        shown = "\n".join(sorted(str(violation) for violation in pending))
        if shown != last_pending:
            last_change, last_pending = time.monotonic(), shown
        if time.monotonic() > deadline or time.monotonic() - last_change > stall:
            log(f"giving up on quiescence: {len(pending)} unsettled (stuck for {stall:.0f}s, or out of time)")
            return world.snapshot(applied, deleted), None
        if time.monotonic() - last_report > 10:
            last_report = time.monotonic()
            log(f"waiting for quiescence: {len(pending)} unsettled, e.g. {pending[0]}")
        time.sleep(1.0)


def _tally(figures: Figures, snapshot: invariants.Snapshot, stats: dict[str, Any]) -> None:
    figures.phases = dict(
        collections.Counter(str((r.get("status") or {}).get("phase")) for r in snapshot.rentals)
    )
    reasons: collections.Counter[str] = collections.Counter()
    for rental in snapshot.rentals:
        status = rental.get("status") or {}
        if status.get("phase") == "Rejected":
            refused = [
                c.get("reason")
                for c in status.get("conditions") or ()
                if c.get("type") in ("StockReserved", "Paid") and c.get("status") == "False"
            ]
            reasons[
                str(next((r for r in refused if r not in ("Released", "Pending", "PaymentPending")), "?"))
            ] += 1
    figures.rejected_reasons = dict(reasons)
    figures.ledger = {table: len(records) for table, records in snapshot.ledger.items()}
    figures.faults_injected = dict(stats.get("faults") or {})
    figures.partner_requests = dict(stats.get("partners") or {})


def run(
    settings: Settings,
    plane: controlplane.ControlPlane,
    work: Path,
    *,
    namespace: str | None = None,
) -> Figures:
    """One chaos run against a started control plane with the CRDs installed; the parts are stopped after."""
    began = time.monotonic()
    deadline = began + settings.time_limit
    figures = Figures(seed=settings.seed, rentals=settings.rentals, machine=machine())
    namespace = namespace or f"chaos-{settings.seed}-{int(time.time())}"
    cluster = testkit.Cluster(plane.kubeconfig, namespace)
    cluster.core.create_namespace({"metadata": {"name": namespace}})
    gateway = testing.GatewayProcess(
        "--quiet",
        "--auto-deliver-seconds",
        "1",
        "--seed",
        str(settings.seed),
        db=work / "ledger.sqlite3",
        log_path=work / "gateway.log",
    )
    operator = testkit.OperatorProcess(
        plane.kubeconfig,
        env={
            "RENTAL_NAMESPACES": namespace,
            "RENTAL_SHIPPING_POLL_SECONDS": "0.5",
            "RENTAL_PAYMENT_RETRY_SECONDS": "1",
            "RENTAL_BREAKER_RESET_SECONDS": "3",
            "RENTAL_DEFERRAL_TIMEOUT_SECONDS": str(settings.deferral_seconds),
            # Pinned to the defaults whatever the caller's environment: `read_snapshot` relies on them.
            "RENTAL_BILLING_PERIOD": "month",
            "RENTAL_WITHDRAWAL_PERIOD": "14d",
        },
        log_path=work / "operator.log",
    )
    figures.logs = {"operator": str(operator.log_path), "gateway": str(gateway.log_path), "work": str(work)}
    events = schedule(settings)
    try:
        gateway.start()
        operator.env.update(partner_env(gateway.url))
        world = _World(plane, gateway, operator, namespace)
        stock = max(1, math.ceil(settings.rentals * settings.stock_fraction / settings.purifiers))
        for name in _purifier_names(settings):
            world.create(testkit.purifier(name, stock=stock, fee=1000 + 100 * int(name.rsplit("-", 1)[1])))
        operator.start(timeout=120)
        world.faults(
            errorRate=settings.error_rate,
            spikeProbability=settings.spike_probability,
            spikeMs=settings.spike_ms,
        )
        log(
            f"namespace {namespace}: {settings.rentals} rentals over {settings.purifiers} purifiers of "
            f"{stock} units, {settings.kills} kills in {settings.chaos_seconds:.0f}s; logs in {work}"
        )
        applied, deleted = _execute(world, events, figures, deadline)
        # The storm is over: faults off, the operator up; from here on only recovery is measured.
        world.faults(errorRate=0.0, spikeProbability=0.0, outage="off")
        world.settle_operator()
        if operator.process is None or operator.process.poll() is not None:
            operator.start(timeout=120)
        snapshot, figures.quiescence_seconds = _wait_quiescent(
            world, applied, deleted, deadline, settings.stall_seconds
        )
        figures.quiescent = figures.quiescence_seconds is not None
        figures.violations = [str(v) for v in invariants.check(snapshot)]
        _tally(figures, snapshot, gateway.stats())
        figures.operator_starts = operator.starts
        if world.start_errors:
            log(f"operator start attempts that failed and were retried: {world.start_errors}")
    finally:
        operator.stop()
        gateway.stop()
    figures.wall_seconds = time.monotonic() - began
    return figures


def machine() -> str:
    model = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    return f"{os.cpu_count()} CPUs ({model.group(1) if model else platform.processor()}), {platform.system()}"


def install_crds(kubeconfig: Path, crds: Path = REPO / "crds") -> None:
    for args in (
        ("apply", "--server-side", "--force-conflicts", "-f", str(crds)),
        ("wait", "--for=condition=Established", "--timeout=60s", "-f", str(crds)),
    ):
        subprocess.run(
            [KUBECTL, f"--kubeconfig={kubeconfig}", *args], check=True, capture_output=True, timeout=90
        )


@contextlib.contextmanager
def _control_plane(reuse: Path | None, work: Path) -> Iterator[controlplane.ControlPlane]:
    """The control plane recorded in `reuse` (left running), or a fresh one in `work` (stopped after)."""
    if reuse is not None:
        plane = controlplane.ControlPlane.load(reuse)
        if not all(plane.running().values()):
            raise SystemExit(
                f"error: the control plane in {reuse} is not fully running (rental-controlplane up)"
            )
        yield plane
        return
    plane = controlplane.ControlPlane(directory=work / "controlplane")
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/chaos", description=__doc__.splitlines()[0] if __doc__ else None
    )
    defaults = Settings()
    parser.add_argument("--rentals", type=int, default=defaults.rentals, help="rentals applied (%(default)s)")
    parser.add_argument("--kills", type=int, default=defaults.kills, help="operator SIGKILLs (%(default)s)")
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help="replays a run's schedule (%(default)s)"
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=defaults.time_limit,
        help="bound on the run in seconds (%(default)s)",
    )
    parser.add_argument("--window", type=float, default=None, help="seconds of chaos (default: from --kills)")
    parser.add_argument("--purifiers", type=int, default=defaults.purifiers)
    parser.add_argument("--outage-seconds", type=float, default=defaults.outage_seconds)
    parser.add_argument("--error-rate", type=float, default=defaults.error_rate)
    parser.add_argument("--crds", type=Path, default=REPO / "crds", help="CRD manifests to install")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--work", type=Path, default=None, help="directory for logs and the ledger")
    parser.add_argument(
        "--controlplane", type=Path, default=None, help="reuse this `rental-controlplane up` state directory"
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings(
            rentals=args.rentals,
            kills=args.kills,
            seed=args.seed,
            time_limit=args.time_limit,
            window=args.window,
            purifiers=args.purifiers,
            outage_seconds=args.outage_seconds,
            error_rate=args.error_rate,
        )
    except ValueError as error:
        parser.error(str(error))
    work = args.work or Path(tempfile.mkdtemp(prefix="rental-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    with _control_plane(args.controlplane, work) as plane:
        install_crds(plane.kubeconfig, args.crds)
        figures = run(settings, plane, work)
    print(figures.summary())
    print(
        f"replay: scripts/chaos --rentals {settings.rentals} --kills {settings.kills} --seed {settings.seed}"
    )
    if args.json:
        args.json.write_text(json.dumps(dataclasses.asdict(figures), indent=2) + "\n")
    return 1 if figures.violations else 0


if __name__ == "__main__":
    sys.exit(main())
