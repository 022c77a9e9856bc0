"""The chart's RBAC is enough for the operator, and no more.

The chart is installed on a control plane of this module's own; a token for its operator
ServiceAccount comes from the TokenRequest API (what the kubelet would mount into the pod), and the
real `rental-operator` process runs with only that token, with the chart's peering settings, against
the reference gateway: a rental is applied, paid, confirmed, delivered, cancelled (refund and return)
and deleted (the finalizer released), and the operator's log shows no refusal. The same token is then
refused what the operator must never do: delete or create a Purifier, delete a Rental, read Secrets.
MyPage's token reads rentals and writes nothing.
"""

from __future__ import annotations

import base64
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rental_devenv import helm, testkit
from rental_gateway import testing


def _free_port() -> int:
    """A free port on loopback for a server of the operator (metrics), so replicas never collide."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


CHART = helm.CHART
RELEASE, NAMESPACE, SHOP = "rental", "rental-system", "shop"
OPERATOR_SA = "rental-purifier-rental-operator"
MYPAGE_SA = "rental-purifier-rental-operator-mypage"
# A refusal as Kopf, the Kubernetes client and our kubeapi word it. A bare "403" would also match a
# log timestamp's milliseconds (",403"), so the status code only counts in its logged forms.
REFUSALS = re.compile(r"Forbidden|forbidden|Not enough permissions|status=403\b|\(403\)")


@pytest.fixture(scope="module")
def installed(fresh_cluster: Any) -> Any:
    fresh_cluster.helm(
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "--values",
        str(CHART / "ci" / "default-values.yaml"),
    )
    fresh_cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    fresh_cluster.kubectl("create", "namespace", SHOP)
    return fresh_cluster


def _token_kubeconfig(cluster: Any, service_account: str, path: Path) -> Path:
    """A kubeconfig holding only a TokenRequest token of `service_account` (no client certificate)."""
    token = cluster.kubectl(
        "create", "token", service_account, "--namespace", NAMESPACE, "--duration=1h"
    ).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    server = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": server["server"],
                    "certificate-authority-data": server["certificate-authority-data"],
                },
            }
        ],
        "users": [{"name": service_account, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "local", "user": service_account}}],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def operator_kubeconfig(installed: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _token_kubeconfig(installed, OPERATOR_SA, tmp_path_factory.mktemp("sa") / "operator.kubeconfig")


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[testing.GatewayProcess]:
    with testing.GatewayProcess(
        "--quiet", "--auto-deliver-seconds", "1", db=tmp_path / "ledger.sqlite3", log_path=tmp_path / "gw.log"
    ) as process:
        yield process


def test_the_token_is_the_service_account(installed: Any, operator_kubeconfig: Path) -> None:
    whoami = installed.kubectl(
        "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", kubeconfig=operator_kubeconfig
    )
    assert whoami.stdout == f"system:serviceaccount:{NAMESPACE}:{OPERATOR_SA}"
    assert "client-certificate" not in operator_kubeconfig.read_text()


def test_operator_completes_a_rental_with_the_charts_credentials_only(
    installed: Any, operator_kubeconfig: Path, gateway: testing.GatewayProcess, tmp_path: Path
) -> None:
    # The objects are the customers' and administrators' (admin credentials); the operator acts
    # with the ServiceAccount's token alone, peered as the chart runs it.
    cluster = testkit.Cluster(installed.kubeconfig, SHOP)
    cluster.create(testkit.purifier("aqua", stock=2))
    cluster.create(testkit.rental("rbac-1", "aqua", customer="c-rbac"))
    operator = testkit.OperatorProcess(
        operator_kubeconfig,
        env={
            "RENTAL_PAYMENT_URL": gateway.url,
            "RENTAL_SHIPPING_URL": gateway.url,
            "RENTAL_SMS_URL": gateway.url,
            "RENTAL_SHIPPING_POLL_SECONDS": "0.5",
            "RENTAL_PAYMENT_RETRY_SECONDS": "0.5",
            "RENTAL_METRICS_PORT": str(_free_port()),
            "RENTAL_METRICS_ADDRESS": "127.0.0.1",
            "RENTAL_MYPAGE_ENABLED": "false",
        },
        log_path=tmp_path / "operator.log",
        extra_args=(f"--peering={OPERATOR_SA}",),
    )
    operator.start()
    try:

        def delivered() -> bool:
            status = (cluster.get("rentals", "rbac-1") or {}).get("status", {})
            return (
                status.get("phase") == "Confirmed" and status.get("delivery", {}).get("phase") == "Delivered"
            )

        testkit.wait_for(delivered, timeout=90, what="the rental confirmed and delivered")
        # Cancelling patches the Payment (refund) and the Delivery (return): more rules in use.
        cluster.patch("rentals", "rbac-1", {"spec": {"cancelled": True}})
        testkit.wait_for(
            lambda: cluster.phase("rentals", "rbac-1") == "Cancelled", timeout=90, what="cancelled"
        )
        # Deleting waits for the operator to release the compensation finalizer.
        cluster.delete("rentals", "rbac-1")
        testkit.wait_for(lambda: cluster.get("rentals", "rbac-1") is None, timeout=60, what="the rental gone")
        peering = installed.kubectl(
            "get", "clusterkopfpeering", OPERATOR_SA, "-o", "jsonpath={.status}"
        ).stdout
        assert peering not in ("", "{}"), "the operator did not keep its peering record"
    finally:
        operator.stop()
    log = operator.log_path.read_text()
    refused = [line for line in log.splitlines() if REFUSALS.search(line)]
    assert refused == [], "the operator was refused something it needs:\n" + "\n".join(refused[:20])
    payments = gateway.ledger()["payments"]
    assert [p["status"] for p in payments] == ["refunded"]
    purifier = cluster.get("purifiers", "aqua")
    assert purifier is not None and purifier["status"]["available"] == 2


@pytest.mark.parametrize(
    "command",
    [
        ("delete", "purifier", "aqua", "-n", SHOP),
        ("create", "-n", SHOP, "-f", "-"),
        ("delete", "rental", "keep-me", "-n", SHOP),
        ("get", "secrets", "-n", NAMESPACE),
        ("get", "secret", "rental-purifier-rental-operator-mypage", "-n", NAMESPACE),
        ("get", "secrets", "-n", SHOP),
        ("delete", "crd", "rentals.rental.purifier.io"),
        ("get", "pods", "-n", NAMESPACE),
    ],
    ids=[
        "delete-purifier",
        "create-purifier",
        "delete-rentals",
        "list-secrets",
        "read-mypage-secret",
        "list-shop-secrets",
        "delete-crd",
        "list-pods",
    ],
)
def test_the_operator_token_is_refused_what_it_must_not_do(
    installed: Any, operator_kubeconfig: Path, command: tuple[str, ...]
) -> None:
    cluster = testkit.Cluster(installed.kubeconfig, SHOP)
    if cluster.get("purifiers", "aqua") is None:
        cluster.create(testkit.purifier("aqua", stock=2))
    if cluster.get("rentals", "keep-me") is None:
        cluster.create(testkit.rental("keep-me", "aqua"))
    manifest = yaml.safe_dump(
        {"apiVersion": "rental.purifier.io/v1alpha1", **testkit.purifier("intruder", stock=1)}
    )
    result = installed.kubectl(*command, input=manifest, check=False, kubeconfig=operator_kubeconfig)
    assert result.returncode != 0
    assert "Forbidden" in result.stderr or "forbidden" in result.stderr, result.stderr
    assert cluster.get("purifiers", "aqua") is not None and cluster.get("rentals", "keep-me") is not None


def test_the_operator_token_deletes_payments_and_nothing_else(
    installed: Any, operator_kubeconfig: Path
) -> None:
    """Monthly billing prunes settled Payments beyond RENTAL_PAYMENT_HISTORY: delete on payments, by
    name only; every other kind is still never deleted by the operator."""

    def can(*question: str) -> str:
        result = installed.kubectl("auth", "can-i", *question, check=False, kubeconfig=operator_kubeconfig)
        return str(result.stdout.strip())

    assert can("delete", "payments.rental.purifier.io", "-n", SHOP) == "yes"
    assert can("deletecollection", "payments.rental.purifier.io", "-n", SHOP) == "no"
    assert can("delete", "deliveries.rental.purifier.io", "-n", SHOP) == "no"
    assert can("delete", "rentals.rental.purifier.io", "-n", SHOP) == "no"


def test_mypage_token_reads_and_writes_only_rentals(installed: Any, tmp_path: Path) -> None:
    """MyPage reads; the customer web app beside it (web.enabled, default true) creates and patches
    Rentals (what it may write is held by the chart's admission policy, tests/helm/test_chart_web.py),
    and nothing else: no status, no deletion, no other kind."""
    kubeconfig = _token_kubeconfig(installed, MYPAGE_SA, tmp_path / "mypage.kubeconfig")

    def can(*question: str) -> str:
        result = installed.kubectl("auth", "can-i", *question, check=False, kubeconfig=kubeconfig)
        return str(result.stdout.strip())

    assert can("list", "rentals.rental.purifier.io", "-A") == "yes"
    assert can("watch", "purifiers.rental.purifier.io", "-n", SHOP) == "yes"
    assert can("patch", "rentals.rental.purifier.io", "-n", SHOP) == "yes"
    assert can("create", "rentals.rental.purifier.io", "-n", SHOP) == "yes"
    assert can("delete", "rentals.rental.purifier.io", "-n", SHOP) == "no"
    assert can("patch", "purifiers.rental.purifier.io", "-n", SHOP) == "no"
    assert can("update", "rentals.rental.purifier.io", "--subresource=status", "-n", SHOP) == "no"
    assert can("get", "secrets", "-n", NAMESPACE) == "no"
    assert can("list", "payments.rental.purifier.io", "-n", SHOP) == "no"


def test_helm_secret_values_never_reach_the_operator_as_rbac(installed: Any) -> None:
    """The partner keys are files of a Secret volume: the kubelet reads the Secret, not the operator."""
    for subject in (OPERATOR_SA, MYPAGE_SA):
        answer = installed.kubectl(
            "auth",
            "can-i",
            "get",
            "secrets",
            "-n",
            NAMESPACE,
            f"--as=system:serviceaccount:{NAMESPACE}:{subject}",
            check=False,
        )
        assert answer.stdout.strip() == "no"
    encoded = installed.kubectl(
        "get",
        "secret",
        "rental-purifier-rental-operator-mypage",
        "-n",
        NAMESPACE,
        "-o",
        "jsonpath={.data.token-secret}",
    ).stdout
    assert len(base64.b64decode(encoded)) == 48
