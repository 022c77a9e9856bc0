"""Shared fixtures: one real control plane per test session, a fresh namespace per test.

The control plane is built from Go modules on first use (see tools/rental_devenv) and started in a
temporary directory; the CRDs in crds/ are installed once. Set RENTAL_TEST_KUBECONFIG to reuse a
control plane that is already running (for example one from `rental-controlplane up`) while iterating;
tests never fall back to the user's own KUBECONFIG, so they cannot touch a real cluster by accident.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from rental_devenv import controlplane

REPO = Path(__file__).resolve().parent.parent
KUBECTL = str(Path(sys.executable).parent / "kubectl")


class Kubectl(Protocol):
    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture(scope="session")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reuse = os.environ.get("RENTAL_TEST_KUBECONFIG")
    if reuse:
        yield Path(reuse)
        return
    plane = controlplane.ControlPlane(directory=tmp_path_factory.mktemp("controlplane"))
    try:
        plane.start()
        yield plane.kubeconfig
    finally:
        plane.stop()


def _run_kubectl(kubeconfig: Path) -> Kubectl:
    def run(
        *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [KUBECTL, f"--kubeconfig={kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}{result.stdout}"
            )
        return result

    return run


@pytest.fixture(scope="session")
def crds(kubeconfig: Path) -> Path:
    """The project's CRDs, installed and Established."""
    run = _run_kubectl(kubeconfig)
    run("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    return REPO / "crds"


@pytest.fixture
def kubectl(kubeconfig: Path, crds: Path) -> Kubectl:
    return _run_kubectl(kubeconfig)


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kubectl: Kubectl) -> Iterator[str]:
    """A namespace of the test's own, deleted afterwards (without waiting for finalization)."""
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Anything that asks for the cluster is a cluster test, whether or not its module says so.
    for item in items:
        if "kubeconfig" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # Let fixtures see whether the test failed (testkit.call_failed), to print process logs only then.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
