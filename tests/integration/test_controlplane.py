"""The local control plane is a real one: garbage collection, service accounts and RBAC all work."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

pytestmark = pytest.mark.cluster


def _configmap(name: str, owner: dict[str, Any] | None = None) -> str:
    metadata: dict[str, Any] = {"name": name}
    if owner:
        metadata["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": owner["name"], "uid": owner["uid"]}
        ]
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {}})


def test_cascading_deletion_removes_dependents(kubectl: Any, namespace: str) -> None:
    # Garbage collection of owner references is kube-controller-manager's job: this proves it runs.
    kubectl("apply", "-n", namespace, "-f", "-", input=_configmap("owner"))
    owner = json.loads(kubectl("get", "configmap", "owner", "-n", namespace, "-o", "json").stdout)
    kubectl("apply", "-n", namespace, "-f", "-", input=_configmap("dependent", owner["metadata"]))
    kubectl("delete", "configmap", "owner", "-n", namespace)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        result = kubectl("get", "configmap", "dependent", "-n", namespace, check=False)
        if result.returncode != 0 and "NotFound" in result.stderr:
            return
        time.sleep(0.5)
    pytest.fail("the dependent ConfigMap was not garbage-collected within 60 s")


def test_namespaces_get_a_default_service_account(kubectl: Any, namespace: str) -> None:
    deadline = time.monotonic() + 30
    while kubectl("get", "serviceaccount", "default", "-n", namespace, check=False).returncode != 0:
        assert time.monotonic() < deadline, "no default ServiceAccount: the controller manager is not running"
        time.sleep(0.3)


def test_rbac_is_enforced(kubectl: Any, namespace: str) -> None:
    allowed = kubectl(
        "auth",
        "can-i",
        "delete",
        "secrets",
        "-n",
        namespace,
        f"--as=system:serviceaccount:{namespace}:default",
        check=False,
    )
    assert allowed.stdout.strip() == "no"


def test_server_reports_a_real_version(kubectl: Any) -> None:
    version = json.loads(kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert version["gitVersion"].startswith("v1.37.")
    assert version["minor"] == "37"
