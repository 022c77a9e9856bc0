"""The operator against partners served over https by a private CA, with and without that CA configured.

The reference gateway runs with `--tls-cert/--tls-key` issued by a throwaway CA (`rental_devenv.certs`).
With `RENTAL_PARTNER_CA_BUNDLE` naming that CA, a rental is paid, shipped and texted as usual. Without
it, nothing is sent unverified: the charge fails as a TLS fault (`outcome="tls_error"` in the
metrics, the breaker opens), the rental keeps its unit in PaymentDeferred, and an Event on the
Payment says the certificate could not be verified.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from rental_devenv import certs, testkit
from rental_gateway import testing
from rental_operator.reconcilers import rentals


@pytest.fixture
def https_gateway(tmp_path: Path) -> Any:
    pki = certs.ensure_pki(tmp_path / "partner-ca")
    gateway = testing.GatewayProcess(
        "--quiet",
        "--auto-deliver-seconds",
        "1",
        "--tls-cert",
        str(pki.serving_cert),
        "--tls-key",
        str(pki.serving_key),
        db=tmp_path / "ledger.sqlite3",
        log_path=tmp_path / "gateway.log",
        ca_bundle=pki.ca_cert,
    )
    gateway.start()
    yield gateway, pki
    gateway.stop()


def test_with_the_partners_ca_a_rental_completes_over_https(
    cluster: testkit.Cluster, https_gateway: Any, operator_factory: Any
) -> None:
    gateway, pki = https_gateway
    assert gateway.url.startswith("https://")
    operator_factory(gateway, partner_ca_bundle=str(pki.ca_cert))
    cluster.create(testkit.purifier("aqua", stock=1))
    cluster.create(testkit.rental("kim", "aqua"))
    testkit.wait_for(
        lambda: (
            (cluster.get("rentals", "kim") or {}).get("status", {}).get("delivery", {}).get("phase")
            == "Delivered"
        ),
        timeout=60,
        what="kim paid, shipped and delivered over https",
    )
    ledger = gateway.ledger()
    assert len(ledger["payments"]) == 1 and len(ledger["shipments"]) == 1 and ledger["messages"]


def test_without_it_the_charge_is_a_tls_fault_and_nothing_is_sent(
    cluster: testkit.Cluster, https_gateway: Any, operator_factory: Any
) -> None:
    gateway, _ = https_gateway
    operator = operator_factory(gateway, breaker_failure_threshold="2")  # the system trust store only
    cluster.create(testkit.purifier("aqua", stock=1))
    cluster.create(testkit.rental("kim", "aqua"))
    testkit.wait_for(
        lambda: cluster.phase("rentals", "kim") == "PaymentDeferred", timeout=60, what="kim deferred"
    )

    # The Payment's lastError moves on to "circuit breaker open" once the breaker opens; its Events
    # (on the Payment of period 1) keep the TLS error that opened it.
    def tls_event() -> str | None:
        events = cluster.core.list_namespaced_event(
            cluster.namespace, field_selector=f"involvedObject.name={rentals.payment_name('kim', 1)}"
        )
        return next((e.message for e in events.items if "TLS error" in (e.message or "")), None)

    message = testkit.wait_for(tls_event, timeout=30, what="an Event with the TLS error")
    assert "certificate verify failed" in message, message
    metrics = operator.metrics()
    tls_errors = re.search(
        r'^rental_payment_requests_total\{operation="charge",outcome="tls_error"\} (\S+)$', metrics, re.M
    )
    assert tls_errors is not None and float(tls_errors.group(1)) >= 1, metrics
    testkit.wait_for(
        lambda: "rental_payment_breaker_state 2.0" in operator.metrics(), timeout=30, what="the breaker open"
    )
    purifier = cluster.get("purifiers", "aqua") or {}
    assert purifier.get("status", {}).get("available") == 0, "the deferred rental keeps its unit"
    assert gateway.ledger()["payments"] == [], "no request reached the partner"
    assert "TLS handshake failed" in gateway.log_text()
