"""Fixtures for the autoscaling tests: the chart rendered with autoscaling values, MyPage as a process,
and the chart's prometheus-adapter rules as the file the adapter reads.

The objects under test are the chart's own (`helm template` with the values a user would set), so the
shipped HPA, ScaledObject and adapter rules are what the API server and the HPA controller see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rental_devenv import helm, mypage, testkit

RELEASE = "rental"
REQUIRED = {
    "partners": {"payment": {"url": "https://pay.example"}, "shipping": {"url": "https://ship.example"}}
}

Render = Callable[[dict[str, Any]], list[dict[str, Any]]]


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    return helm.ensure_helm()


@pytest.fixture
def render(helm_binary: Path, namespace: str, tmp_path: Path) -> Render:
    """`helm template` of the chart into the test's namespace, with `values` over the required ones."""

    def render(values: dict[str, Any]) -> list[dict[str, Any]]:
        path = tmp_path / f"values-{len(list(tmp_path.glob('values-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump({**REQUIRED, **values}))
        return helm.template(helm_binary, path, release=RELEASE, namespace=namespace)

    return render


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = helm.select(objects, kind)
    assert len(found) == 1, f"expected one {kind}: {[o['metadata']['name'] for o in found]}"
    return found[0]


def mypage_objects(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects that make MyPage's Deployment scalable here: its ServiceAccount (pods are only
    created when it exists), Deployment and Service."""
    return [
        o
        for o in objects
        if o["kind"] in {"ServiceAccount", "Deployment", "Service"}
        and o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "mypage"
    ]


def adapter_rules(objects: list[dict[str, Any]], directory: Path) -> Path:
    """The chart's prometheus-adapter ConfigMap, as the config.yaml file the adapter is given."""
    path = directory / "adapter-config.yaml"
    path.write_text(one(objects, "ConfigMap")["data"]["config.yaml"])
    return path


@pytest.fixture
def mypage_process(
    kubeconfig: Path, namespace: str, crds: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[mypage.MyPageProcess]:
    process = mypage.MyPageProcess(kubeconfig, namespace=namespace, log_path=tmp_path / "mypage.log")
    process.start()
    yield process
    testkit.stop_all([process], failed=testkit.call_failed(request.node))
