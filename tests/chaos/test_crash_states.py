"""States the chaos run found a SIGKILL can leave behind, recreated exactly: the operator must finish each.

The chaos runner finds these by chance (a kill has to land between two writes of one pass); here the
state is written by hand while the operator is down, so the scenario is deterministic and fast. Each
test then restarts the operator and expects every invariant of `rental_devenv.invariants` to hold.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rental_devenv import chaos, invariants, testkit
from rental_gateway import testing
from rental_operator.reconcilers import rentals

pytestmark = [pytest.mark.chaos]


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[testing.GatewayProcess]:
    with testing.GatewayProcess(
        "--quiet",
        "--auto-deliver-seconds",
        "1",
        db=tmp_path / "ledger.sqlite3",
        log_path=tmp_path / "gateway.log",
    ) as process:
        yield process


@pytest.fixture
def cluster(kubeconfig: Path, namespace: str, crds: Path) -> testkit.Cluster:
    return testkit.Cluster(kubeconfig, namespace)


@pytest.fixture
def operator(
    kubeconfig: Path,
    namespace: str,
    gateway: testing.GatewayProcess,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[testkit.OperatorProcess]:
    process = testkit.OperatorProcess(
        kubeconfig,
        env={
            **chaos.partner_env(gateway.url),
            "RENTAL_NAMESPACES": namespace,
            "RENTAL_SHIPPING_POLL_SECONDS": "0.5",
            "RENTAL_PAYMENT_RETRY_SECONDS": "0.5",
            "RENTAL_DEFERRAL_TIMEOUT_SECONDS": "4",
        },
        log_path=tmp_path / "operator.log",
    )
    yield process
    testkit.stop_all([process], failed=testkit.call_failed(request.node), lines=60)


def _settled(cluster: testkit.Cluster, gateway: testing.GatewayProcess) -> list[invariants.Violation]:
    with contextlib.suppress(TimeoutError):  # what is still unsettled is reported with the rest
        testkit.wait_for(
            lambda: not invariants.unsettled(chaos.read_snapshot(cluster, gateway)),
            timeout=30,
            what="quiescence",
        )
    return invariants.check(chaos.read_snapshot(cluster, gateway))


# The bug both tests pinned (found by scripts/chaos, seeds 7 and 11; see docs/reliability.md): when a
# rental's deferral expires, its pass asks the Payment for a refund (spec.refund) and releases the
# unit, then writes Rejected. A SIGKILL, or an API server restart failing that last write, left the
# refund request without the rejection, and `reconcilers.rentals.decide` did not look at spec.refund:
# it took a Refunded payment on a rental neither cancelled nor rejected for a stale view and waited
# forever, and it confirmed (and shipped) on an Approved one about to be refunded. It now finishes
# the rejection whenever a refund was asked of a rental that is not cancelled.


# The rental's charge at application: the Payment of period 1.
_PAYMENT = rentals.payment_name("late", 1)


def _deferred_then_killed(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator: testkit.OperatorProcess
) -> dict[str, Any]:
    """A rental parked in PaymentDeferred, the operator SIGKILLed, and its Payment asked to refund,
    as the killed pass left them; returns the Payment."""
    cluster.create(testkit.purifier("aqua", stock=2))
    gateway.set_faults(outage="unavailable")
    operator.start()
    cluster.create(testkit.rental("late", "aqua"))
    testkit.wait_for(
        lambda: cluster.phase("rentals", "late") == "PaymentDeferred", timeout=30, what="deferral"
    )
    operator.kill()
    return cluster.patch("payments", _PAYMENT, {"spec": {"refund": True}})


def _write_payment_status(cluster: testkit.Cluster, status: dict[str, Any]) -> None:
    cluster.custom.patch_namespaced_custom_object_status(
        testkit.GROUP,
        testkit.VERSION,
        cluster.namespace,
        "payments",
        _PAYMENT,
        {"status": status},
        _content_type="application/merge-patch+json",
    )


def _restart_after_the_deadline(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator: testkit.OperatorProcess
) -> list[invariants.Violation]:
    deadline = datetime.datetime.fromisoformat(_status(cluster, "late")["deferredUntil"])
    testkit.wait_for(
        lambda: datetime.datetime.now(datetime.UTC) > deadline, timeout=10, what="the deferral deadline"
    )
    gateway.set_faults(outage="off")
    operator.start()
    return _settled(cluster, gateway)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_lost_rejection_after_the_refund_settled(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator: testkit.OperatorProcess
) -> None:
    _deferred_then_killed(cluster, gateway, operator)
    # The Payment controller settled the refund request before the kill: nothing was charged (every
    # request met the outage), so it is Refunded without a call.
    _write_payment_status(cluster, {"phase": "Refunded", "refundedAt": _now()})

    violations = _restart_after_the_deadline(cluster, gateway, operator)
    assert [str(v) for v in violations] == []
    assert _status(cluster, "late")["phase"] == "Rejected"


def test_a_lost_rejection_while_an_uncertain_charge_is_refunded(
    cluster: testkit.Cluster, gateway: testing.GatewayProcess, operator: testkit.OperatorProcess
) -> None:
    payment = _deferred_then_killed(cluster, gateway, operator)
    # A charge whose answer was lost (a latency spike past the timeout) did land; asked to refund,
    # the Payment controller learned the outcome under the same key (Approved) and was about to
    # refund it. The rental must end Rejected with the charge refunded, not Confirmed and shipped.
    spec = payment["spec"]
    gateway.set_faults(outage="off")
    charge = _charge(gateway, spec, reference=f"{cluster.namespace}/late")
    gateway.set_faults(outage="unavailable")
    _write_payment_status(
        cluster, {"phase": "Approved", "transactionId": charge, "attempts": 2, "approvedAt": _now()}
    )

    violations = _restart_after_the_deadline(cluster, gateway, operator)
    assert [str(v) for v in violations] == []
    assert _status(cluster, "late")["phase"] == "Rejected"
    assert [p["status"] for p in gateway.ledger()["payments"]] == ["refunded"]


def _charge(gateway: testing.GatewayProcess, spec: dict[str, Any], *, reference: str) -> str:
    """The charge the operator's own request made, under the key of the Payment's attempt
    (`<spec.idempotencyKey>-a<spec.attempt>`, CONTRACT §1 "Billing"): the payment's id."""
    body = {"amount": spec["amount"], "currency": spec["currency"], "customerId": spec["customerId"]}
    key = f"{spec['idempotencyKey']}-a{spec.get('attempt', 1)}"
    request = urllib.request.Request(
        f"{gateway.url}/v1/payments",
        data=json.dumps({**body, "reference": reference}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.loads(answer.read())["id"])


def _status(cluster: testkit.Cluster, name: str) -> dict[str, Any]:
    rental = cluster.get("rentals", name)
    assert rental is not None
    return dict(rental.get("status") or {})
