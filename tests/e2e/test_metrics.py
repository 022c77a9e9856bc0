"""A real Prometheus scrapes the operator and a MyPage process during a scripted flow; PromQL sees what
happened: rentals by phase, the breaker open (2) while the payment system is down and closed (0) after,
payment latency quantiles, and MyPage's requests by status code."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rental_devenv import autoscaling, helm, mypage, prometheus, testkit
from rental_gateway import testing
from rental_operator.mypage import auth


@pytest.fixture
def scraper(tmp_path: Path) -> Iterator[Any]:
    started: list[prometheus.PrometheusProcess] = []

    def start(targets: dict[str, list[str]]) -> prometheus.PrometheusProcess:
        process = prometheus.PrometheusProcess(targets, directory=tmp_path / "prometheus")
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def mypage_process(
    kubeconfig: Path, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[mypage.MyPageProcess]:
    process = mypage.MyPageProcess(kubeconfig, namespace=namespace, log_path=tmp_path / "mypage.log")
    process.start()
    yield process
    testkit.stop_all([process], failed=testkit.call_failed(request.node))


def test_prometheus_sees_rentals_breaker_and_latency(
    cluster: testkit.Cluster,
    gateway: testing.GatewayProcess,
    operator_factory: Any,
    scraper: Any,
    mypage_process: mypage.MyPageProcess,
) -> None:
    operator = operator_factory(gateway, breaker_failure_threshold="2", breaker_reset_seconds="2")
    prom = scraper(
        {
            "operator": [f"127.0.0.1:{operator.metrics_port}"],
            "mypage": [f"127.0.0.1:{mypage_process.metrics_port}"],
        }
    )
    testkit.wait_for(lambda: prom.scalar("sum(up)") == 2, timeout=30, what="both targets scraped")
    assert prom.scalar('count(rental_build_info{job="operator",version!=""})') == 1
    namespace = cluster.namespace
    cluster.create(testkit.purifier("aqua", stock=10))
    for name in ("a", "b", "c"):
        cluster.create(testkit.rental(name, "aqua"))

    confirmed = f'rental_rentals{{namespace="{namespace}",phase="Confirmed"}}'
    testkit.wait_for(
        lambda: prom.scalar(confirmed) == 3, timeout=60, what="3 Confirmed rentals in Prometheus"
    )
    testkit.wait_for(
        lambda: (
            prom.scalar(f'rental_purifier_available_units{{namespace="{namespace}",purifier="aqua"}}') == 7
        ),
        timeout=30,
        what="7 units available",
    )
    assert prom.scalar("rental_payment_breaker_state") == 0
    approved = prom.scalar('sum(rental_payment_requests_total{operation="charge",outcome="approved"})')
    assert approved == 3
    # Monthly contracts: three first months charged, three monthly fees in force, nothing late.
    first = prom.scalar('sum(rental_billing_charges_total{kind="first",outcome="approved"})')
    assert first == 3
    assert prom.scalar('rental_monthly_recurring_revenue{job="operator",currency="KRW"}') == 3 * 30_000
    assert prom.scalar('rental_past_due{job="operator"}') == 0
    assert prom.scalar('rental_billing_lag_seconds{job="operator"}') == 0
    transitions = 'sum(rental_phase_transitions_total{kind="Rental",to_phase="Confirmed"})'
    assert prom.scalar(transitions) == 3
    # Latency quantiles come from the histogram.
    p50 = prom.scalar("histogram_quantile(0.5, sum by (le) (rental_payment_request_duration_seconds_bucket))")
    assert p50 is not None and 0 < p50 < 2
    assert prom.scalar('count(rental_handler_duration_seconds_count{kind="Rental"})') == 1

    # The payment system goes down: the breaker opens (2) and deferred work is pending.
    gateway.set_faults(outage="unavailable", partners=["payments"])
    for name in ("d", "e", "f"):
        cluster.create(testkit.rental(name, "aqua"))
    testkit.wait_for(
        lambda: prom.scalar("rental_payment_breaker_state") == 2, timeout=30, what="breaker open"
    )
    testkit.wait_for(lambda: (prom.scalar("rental_pending_work") or 0) >= 3, timeout=30, what="pending work")
    deferred = f'rental_rentals{{namespace="{namespace}",phase="PaymentDeferred"}}'
    testkit.wait_for(lambda: prom.scalar(deferred) == 3, timeout=30, what="3 deferred rentals")

    # It comes back: the breaker closes (0), everything is confirmed, nothing is pending.
    gateway.set_faults(outage="off")
    testkit.wait_for(lambda: prom.scalar(confirmed) == 6, timeout=60, what="6 Confirmed after recovery")
    testkit.wait_for(
        lambda: prom.scalar("rental_payment_breaker_state") == 0, timeout=30, what="breaker closed"
    )
    testkit.wait_for(lambda: prom.scalar("rental_pending_work") == 0, timeout=60, what="no pending work")
    assert (prom.scalar('sum(rental_notifications_total{outcome="sent"})') or 0) >= 6 * 3
    # The breaker went open and came back closed: both transitions were counted.
    for state in ("open", "closed"):
        transitions = f'rental_payment_breaker_transitions_total{{to_state="{state}"}}'
        assert (prom.scalar(transitions) or 0) >= 1, state

    # MyPage, scraped on its own metrics port: a customer's reads and a stranger's refusals, by code.
    token = auth.mint(mypage.TOKEN_SECRET.encode(), "cust-1", expires=int(time.time()) + 600)
    for _ in range(5):
        assert mypage_process.get("/api/v1/customers/cust-1/rentals", token=token) == 200
    for _ in range(3):
        assert mypage_process.get("/api/v1/customers/cust-1/rentals") == 401
    ok = 'sum(rental_mypage_requests_total{job="mypage",code="200"})'
    refused = 'sum(rental_mypage_requests_total{job="mypage",code="401"})'
    testkit.wait_for(lambda: prom.scalar(refused) == 3, timeout=30, what="3 refused MyPage requests")
    # 200s include the readiness checks made while MyPage started.
    testkit.wait_for(lambda: (prom.scalar(ok) or 0) >= 5, timeout=30, what="5 answered MyPage requests")
    p99 = prom.scalar(
        'histogram_quantile(0.99, sum by (le) (rental_mypage_request_duration_seconds_bucket{job="mypage"}))'
    )
    assert p99 is not None and 0 < p99 < 1

    # Every query of the shipped Grafana dashboard is valid PromQL over series that exist.
    for title, expr in _dashboard_queries():
        assert prom.query(expr), f"dashboard panel {title!r}: no data for {expr}"


def test_external_metrics_api_serves_pending_work_and_the_breaker(
    *,
    kubeconfig: Path,
    kubectl: Any,
    cluster: testkit.Cluster,
    gateway: testing.GatewayProcess,
    operator_factory: Any,
    scraper: Any,
    tmp_path: Path,
) -> None:
    """The chart's external rules, in the real prometheus-adapter behind the API server: what an HPA
    of `type: External` reads for `rental_pending_work` and `rental_payment_breaker_state`."""
    namespace = cluster.namespace
    operator = operator_factory(gateway, breaker_failure_threshold="2", breaker_reset_seconds="30")
    prom = scraper({"operator": [f"127.0.0.1:{operator.metrics_port}"]})
    objects = helm.template(
        helm.ensure_helm(),
        set_values=(*CHART_REQUIRED, "metrics.prometheusAdapter.enabled=true"),
        namespace=namespace,
    )
    [config_map] = helm.select(objects, "ConfigMap")
    rules = tmp_path / "adapter-config.yaml"
    rules.write_text(config_map["data"]["config.yaml"])

    def external(metric: str) -> float | None:
        path = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}"
        answer = kubectl("get", "--raw", path, check=False)
        if answer.returncode != 0:  # not listed yet: the adapter relists Prometheus every 5 s
            return None
        items = json.loads(answer.stdout)["items"]
        return _quantity(items[0]["value"]) if items else None

    cluster.create(testkit.purifier("aqua", stock=10))
    with autoscaling.metrics_apis(
        kubeconfig,
        prometheus_url=prom.url,
        rules=rules,
        namespace=namespace,
        directory=tmp_path / "adapter",
    ):
        testkit.wait_for(lambda: external("rental_pending_work") == 0, timeout=60, what="pending work 0")
        assert external("rental_payment_breaker_state") == 0

        gateway.set_faults(outage="unavailable", partners=["payments"])
        for name in ("a", "b", "c"):
            cluster.create(testkit.rental(name, "aqua"))
        testkit.wait_for(
            lambda: external("rental_payment_breaker_state") == 2, timeout=60, what="breaker open (2)"
        )
        testkit.wait_for(lambda: external("rental_pending_work") == 3, timeout=60, what="3 rentals pending")

        gateway.set_faults(outage="off")
        testkit.wait_for(lambda: external("rental_pending_work") == 0, timeout=120, what="pending work 0")
        testkit.wait_for(
            lambda: external("rental_payment_breaker_state") == 0, timeout=60, what="breaker closed (0)"
        )


CHART_REQUIRED = ("partners.payment.url=https://pay.example", "partners.shipping.url=https://ship.example")


def _dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, query) of the chart's dashboard, with Grafana's variables given values."""
    dashboard = json.loads((helm.CHART / "dashboards" / "purifier-rental-operator.json").read_text())
    return [
        (panel["title"], target["expr"].replace("$__rate_interval", "1m").replace("$namespace", ".*"))
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def _quantity(text: str) -> float:
    """A Kubernetes quantity as the metrics APIs write it ("3", "500m")."""
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
