"""`scripts/demo --in-cluster`: the demo's story with the operator and MyPage as the chart's pods.

`rental_devenv.demo --in-cluster IMAGE` on this module's node (the image this checkout builds,
imported by the fixture, as `rental-controlplane up --node` imports it): the gateway on the node's
address, `helm install` of the chart, the samples taken through the contract, a customer's MyPage
fetched through its Service, and the operator scaled to zero once the gateway stops. Marked `node`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rental_devenv import demo, testkit
from tests.devenv.test_demo import check_story
from tests.node.conftest import TAG, NodeCluster

pytestmark = pytest.mark.node


def test_the_demo_story_runs_in_the_cluster(
    node_cluster: NodeCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = demo.main(
        [
            "--kubeconfig",
            str(node_cluster.kubeconfig),
            "--namespace",
            "demo",
            "--logs",
            str(tmp_path),
            "--in-cluster",
            TAG,
        ]
    )
    printed = capsys.readouterr().out
    with capsys.disabled():
        print("\n" + printed)
    assert code == 0, printed
    check_story(testkit.Cluster(node_cluster.kubeconfig, "demo"), printed)
    assert "MyPage answers through its Service http://" in printed and ": 200, " in printed, printed

    pods = json.loads(node_cluster.kubectl("get", "pods", "-n", demo.RELEASE_NAMESPACE, "-o", "json").stdout)[
        "items"
    ]
    images = {c["image"] for p in pods for c in p["spec"]["containers"]}
    assert images == {TAG}, images
    deployments = json.loads(
        node_cluster.kubectl(
            "get", "deployments", "-n", demo.RELEASE_NAMESPACE, "-l", demo.OPERATOR_PODS, "-o", "json"
        ).stdout
    )["items"]
    # The gateway stopped with the demo: the operator is scaled to zero, MyPage keeps serving.
    assert [d["spec"]["replicas"] for d in deployments] == [0]
    node_cluster.helm("uninstall", demo.RELEASE, "--namespace", demo.RELEASE_NAMESPACE, "--wait")
