"""Fixtures for the Helm chart's tests: the real helm (built from Go modules on first use) and a
control plane of their own.

Installing the chart changes cluster-wide things (CRDs, ClusterRoles, peering objects) that the rest
of the suite shares, and `helm install` should meet a cluster as a user's would be, without the CRDs
the session fixtures apply: so install tests get a fresh control plane per module (`fresh_cluster`).
Rendering and selection helpers live in `rental_devenv.helm`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rental_devenv import controlplane, helm

KUBECTL = str(Path(sys.executable).parent / "kubectl")


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    return helm.ensure_helm()


@dataclass
class FreshCluster:
    """A control plane of the test module's own, with kubectl and helm pointed at it."""

    kubeconfig: Path
    helm_binary: Path
    plane: controlplane.ControlPlane

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [KUBECTL, f"--kubeconfig={kubeconfig or self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}{result.stdout}")
        return result

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return helm.run(self.helm_binary, *args, kubeconfig=self.kubeconfig, check=check)


@pytest.fixture(scope="module")
def fresh_cluster(tmp_path_factory: pytest.TempPathFactory, helm_binary: Path) -> Iterator[FreshCluster]:
    plane = controlplane.ControlPlane(directory=tmp_path_factory.mktemp("helm-controlplane"))
    try:
        plane.start()
        yield FreshCluster(kubeconfig=plane.kubeconfig, helm_binary=helm_binary, plane=plane)
    finally:
        plane.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests on a control plane of their own are cluster tests too (`-m "not cluster"` skips them).
    for item in items:
        if "fresh_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)
