"""kubeapi against the real API server, through libcurl and through the client's own transport.

Every request shape the saga makes, with the answers it relies on: creation that is idempotent, a
status write guarded by resourceVersion that fails with Conflict on a stale view, NotFound, a
guarded merge patch, an Event; then credentials (a bearer token of a service account, as in a pod)
and an unreachable server, which must fail fast as a retryable error and never hang a worker.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from rental_operator import kubeapi, kubehttp
from rental_operator.api import purifier


def _purifier(name: str, stock: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": purifier.RESOURCE.api_version,
        "kind": purifier.RESOURCE.kind,
        "metadata": {"name": name},
        "spec": {"model": "AquaPure 3", "displayName": "AquaPure", "monthlyFee": 19900, "stock": stock},
    }


@pytest.fixture(params=["curl", "client"])
def kube(request: pytest.FixtureRequest, kubeconfig: Path, crds: Path) -> kubeapi.Kube:
    kube = kubeapi.Kube(kubeapi.load_client(str(kubeconfig)), curl=request.param == "curl")
    assert (kube._http is not None) == (request.param == "curl")
    return kube


def test_the_saga_s_requests_and_their_answers(kube: kubeapi.Kube, namespace: str) -> None:
    created = kube.create(purifier.RESOURCE, namespace, _purifier("aqua"))
    assert created["metadata"]["uid"]
    again = kube.create(purifier.RESOURCE, namespace, _purifier("aqua", stock=9))
    assert again["metadata"]["uid"] == created["metadata"]["uid"], "creation is idempotent"
    assert again["spec"]["stock"] == 3, "the existing object is returned, not overwritten"

    written = kube.replace_status(purifier.RESOURCE, created, {"allocated": 1, "available": 2})
    assert written["status"]["allocated"] == 1
    assert int(written["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    with pytest.raises(kubeapi.Conflict):
        kube.replace_status(purifier.RESOURCE, created, {"allocated": 2, "available": 1})  # stale view
    assert kube.get(purifier.RESOURCE, namespace, "aqua")["status"]["allocated"] == 1

    patched = kube.merge_patch(purifier.RESOURCE, written, {"metadata": {"labels": {"tier": "gold"}}})
    assert patched["metadata"]["labels"] == {"tier": "gold"}
    with pytest.raises(kubeapi.Conflict):
        kube.merge_patch(purifier.RESOURCE, written, {"metadata": {"labels": {"tier": "tin"}}})
    unguarded = kube.merge_patch(
        purifier.RESOURCE, written, {"metadata": {"labels": {"tier": "tin"}}}, guarded=False
    )
    assert unguarded["metadata"]["labels"] == {"tier": "tin"}

    with pytest.raises(kubeapi.NotFound):
        kube.get(purifier.RESOURCE, namespace, "missing")

    kube.post_event(patched, type_="Normal", reason="StockChecked", message="unicode survives: 정수기 ✓")
    events = kube._call("GET", f"/api/v1/namespaces/{namespace}/events")["items"]
    assert [(e["reason"], e["message"], e["involvedObject"]["name"]) for e in events] == [
        ("StockChecked", "unicode survives: 정수기 ✓", "aqua")
    ]


def test_an_invalid_write_is_refused_with_the_server_s_reason(kube: kubeapi.Kube, namespace: str) -> None:
    bad = _purifier("bad")
    bad["spec"]["stock"] = -1
    with pytest.raises(kubernetes.client.ApiException) as refused:
        kube.create(purifier.RESOURCE, namespace, bad)
    assert refused.value.status == 422
    assert "spec.stock" in str(refused.value)


def test_a_service_account_token_is_sent_as_a_pod_would(
    kubeconfig: Path, kubectl: Any, namespace: str
) -> None:
    kubectl("create", "serviceaccount", "saga", "--namespace", namespace)
    kubectl(
        "create",
        "role",
        "saga",
        "--verb=get,create",
        "--resource=purifiers.rental.purifier.io",
        "--namespace",
        namespace,
    )
    kubectl(
        "create",
        "rolebinding",
        "saga",
        "--role=saga",
        f"--serviceaccount={namespace}:saga",
        "--namespace",
        namespace,
    )
    token = kubectl("create", "token", "saga", "--namespace", namespace).stdout.strip()
    admin = kubeapi.load_client(str(kubeconfig)).configuration
    configuration = kubernetes.client.Configuration()
    configuration.host = admin.host
    configuration.ssl_ca_cert = admin.ssl_ca_cert
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    kube = kubeapi.Kube(kubernetes.client.ApiClient(configuration))
    assert kube._http is not None
    assert kube.create(purifier.RESOURCE, namespace, _purifier("by-token"))["metadata"]["name"] == "by-token"
    with pytest.raises(kubernetes.client.ApiException) as forbidden:  # its Role is in this namespace only
        kube.get(purifier.RESOURCE, "default", "anything")
    assert forbidden.value.status == 403


def test_an_unreachable_server_fails_fast_and_retryably() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = kubehttp.CurlTransport(
        host=f"https://127.0.0.1:{port}", ca_file=None, cert_file=None, key_file=None, verify=True
    )
    with pytest.raises(kubehttp.TransportError, match="curl error 7"):
        transport.request("GET", "/version", body=None, content_type="application/json")


def test_settings_it_does_not_speak_go_through_the_client() -> None:
    configuration = kubernetes.client.Configuration()
    configuration.host = "https://127.0.0.1:6443"
    assert kubehttp.CurlTransport.for_configuration(configuration, connect_timeout=1, total_timeout=1)
    configuration.proxy = "http://proxy.example:3128"
    assert kubehttp.CurlTransport.for_configuration(configuration, connect_timeout=1, total_timeout=1) is None
    configuration.proxy = None
    configuration.tls_server_name = "kubernetes.default"
    assert kubehttp.CurlTransport.for_configuration(configuration, connect_timeout=1, total_timeout=1) is None
