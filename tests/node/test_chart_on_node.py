"""The Helm chart's pods on a real node: probes, the ServiceAccount token, the partners on the host.

`tests/helm` proves the API server accepts the chart's objects; here the pods run (kubelet, containerd,
runc, CNI, kube-proxy: `rental_devenv.node`), from the image this checkout builds. The reference
gateway runs on the host, bound to the node's private address, which is what the pods reach; the chart's
partner URLs point there. Marked `node`: it builds the image and changes the host (undone at teardown).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rental_devenv import helm, node, testkit
from rental_gateway import testing
from tests.node.conftest import TAG, NodeCluster

pytestmark = pytest.mark.node

NAMESPACE = "rental-system"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.GatewayProcess]:
    directory = tmp_path_factory.mktemp("node-gateway")
    # Bound to the node's address, not 0.0.0.0: the pods reach it there, nothing else can.
    with testing.GatewayProcess(
        "--host",
        node.ADDRESS,
        "--quiet",
        "--auto-deliver-seconds",
        "1",
        db=directory / "ledger.sqlite3",
        log_path=directory / "gateway.log",
    ) as process:
        yield process


def _diagnostics(cluster: NodeCluster) -> str:
    pods = cluster.kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout
    described = cluster.kubectl("describe", "pods", "-n", NAMESPACE, check=False).stdout[-6000:]
    logs = cluster.kubectl(
        "logs",
        "-n",
        NAMESPACE,
        "--all-containers",
        "--tail=40",
        "-l",
        "app.kubernetes.io/instance=rental",
        check=False,
    )
    kubelet = cluster.node.log_path("kubelet").read_text(errors="replace").splitlines()[-30:]
    return f"{pods}\n{described}\n--- logs ---\n{logs.stdout}{logs.stderr}\n--- kubelet ---\n" + "\n".join(
        kubelet
    )


@pytest.fixture(scope="module")
def installed(node_cluster: NodeCluster, gateway: testing.GatewayProcess) -> NodeCluster:
    return install(node_cluster, gateway)


def install(node_cluster: NodeCluster, gateway: testing.GatewayProcess, *values: Path) -> NodeCluster:
    """`helm install` of `ci/default-values.yaml`, then `values` (files), with the imported image and
    the gateway as every partner; returns once every Deployment is Available."""
    repository, tag = TAG.rsplit(":", 1)
    started = time.monotonic()
    node_cluster.helm(
        "install",
        "rental",
        str(helm.CHART),
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "--values",
        str(helm.CHART / "ci" / "default-values.yaml"),
        *(argument for path in values for argument in ("--values", str(path))),
        "--set",
        f"image.repository={repository}",
        "--set",
        f"image.tag={tag}",
        "--set",
        "image.pullPolicy=Never",
        "--set",
        f"partners.payment.url={gateway.url}",
        "--set",
        f"partners.shipping.url={gateway.url}",
        "--set",
        f"partners.sms.url={gateway.url}",
        "--set",
        "partners.shipping.pollSeconds=1",
    )
    waited = node_cluster.kubectl(
        "wait",
        "deployment",
        "--all",
        "-n",
        NAMESPACE,
        "--for=condition=Available",
        "--timeout=240s",
        check=False,
        timeout=260,
    )
    if waited.returncode != 0:
        raise AssertionError(
            "the chart's deployments did not become Available:\n"
            f"{waited.stderr}\n{_diagnostics(node_cluster)}"
        )
    print(f"\n[node] helm install to every deployment Available: {time.monotonic() - started:.1f}s")
    return node_cluster


def _pods(cluster: NodeCluster) -> list[dict[str, Any]]:
    listing = json.loads(cluster.kubectl("get", "pods", "-n", NAMESPACE, "-o", "json").stdout)
    return list(listing["items"])


def test_the_operator_and_mypage_pods_are_ready_through_their_probes(installed: NodeCluster) -> None:
    pods = _pods(installed)
    by_component: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        component = pod["metadata"]["labels"].get("app.kubernetes.io/component", "")
        by_component.setdefault(component, []).append(pod)
    assert set(by_component) >= {"operator", "mypage"}, sorted(by_component)
    assert len(by_component["operator"]) == 2 and len(by_component["mypage"]) == 2
    for pod in pods:
        assert pod["spec"]["nodeName"] == node.NODE_NAME
        assert pod["status"]["podIP"].startswith("10.244.0.")
        conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert conditions["Ready"] == "True", pod["metadata"]["name"]
        for container in pod["spec"]["containers"]:
            # Ready through the chart's own probes, not for want of any.
            assert "readinessProbe" in container and "livenessProbe" in container
            assert container["image"] == TAG
        assert all(s["restartCount"] == 0 for s in pod["status"]["containerStatuses"])


def test_a_rental_applied_with_kubectl_is_confirmed_by_the_pod(
    installed: NodeCluster, gateway: testing.GatewayProcess, tmp_path: Path
) -> None:
    namespace = f"node-{uuid.uuid4().hex[:6]}"
    installed.kubectl("create", "namespace", namespace)
    manifests = [
        {"apiVersion": "rental.purifier.io/v1alpha1", **testkit.purifier("aqua", stock=2)},
        {"apiVersion": "rental.purifier.io/v1alpha1", **testkit.rental("on-node", "aqua", customer="c-node")},
    ]
    installed.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(manifests))
    cluster = testkit.Cluster(installed.kubeconfig, namespace)
    started = time.monotonic()
    try:
        testkit.wait_for(
            lambda: cluster.phase("rentals", "on-node") == "Confirmed",
            timeout=120,
            what="the rental confirmed by the operator pod",
        )
    except TimeoutError as error:
        raise AssertionError(
            f"{error}\n{_diagnostics(installed)}\n--- gateway ---\n{gateway.log_text()[-3000:]}"
        ) from None
    print(f"\n[node] kubectl apply to Confirmed: {time.monotonic() - started:.1f}s")
    charges = [p for p in gateway.ledger()["payments"] if p["reference"] == f"{namespace}/on-node"]
    assert len(charges) == 1 and charges[0]["status"] == "approved"
    # Driven by a pod: the operator's log (read through the kubelet) names the rental, and the pod
    # talks to the API server with its mounted ServiceAccount token, as the chart's RBAC allows.
    logs = installed.kubectl(
        "logs", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=operator", "--tail=-1", "--prefix"
    ).stdout
    assert "on-node" in logs
