"""End-to-end fixtures: the reference gateway and the operator, each as its own process.

Every test gets its own namespace, gateway (fresh ledger) and operator watching only that namespace,
so scenarios cannot see each other's rentals, charges or messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rental_devenv import testkit
from rental_gateway import testing

GatewayFactory = Callable[..., testing.GatewayProcess]
OperatorFactory = Callable[..., testkit.OperatorProcess]


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[GatewayFactory]:
    started: list[testing.GatewayProcess] = []

    def start(*flags: str) -> testing.GatewayProcess:
        process = testing.GatewayProcess(
            "--quiet",
            *flags,
            db=tmp_path / f"ledger-{len(started)}.sqlite3",
            log_path=tmp_path / "gateway.log",
        )
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def gateway(gateway_factory: GatewayFactory) -> testing.GatewayProcess:
    """A gateway that delivers shipments one second after they leave."""
    return gateway_factory("--auto-deliver-seconds", "1")


@pytest.fixture
def operator_factory(
    kubeconfig: Path, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[OperatorFactory]:
    started: list[testkit.OperatorProcess] = []

    def start(
        gateway: testing.GatewayProcess, *, launch: bool = True, **settings: str
    ) -> testkit.OperatorProcess:
        env = {
            "RENTAL_PAYMENT_URL": gateway.url,
            "RENTAL_SHIPPING_URL": gateway.url,
            "RENTAL_SMS_URL": gateway.url,
            "RENTAL_NAMESPACES": namespace,
            "RENTAL_SHIPPING_POLL_SECONDS": "0.5",
            "RENTAL_PAYMENT_RETRY_SECONDS": "0.5",
            **{f"RENTAL_{key.upper()}": value for key, value in settings.items()},
        }
        process = testkit.OperatorProcess(kubeconfig, env=env, log_path=tmp_path / "operator.log")
        started.append(process)
        if launch:
            process.start()
        return process

    yield start
    testkit.stop_all(started, failed=testkit.call_failed(request.node), lines=80)


@pytest.fixture
def cluster(kubeconfig: Path, namespace: str, crds: Path) -> testkit.Cluster:
    return testkit.Cluster(kubeconfig, namespace)
