"""Fixtures for the node tests: a control plane and a real node of their own, on demand.

The node (`rental_devenv.node`) changes the host (an interface, iptables chains, cgroups, sysctls), so
it runs only for tests marked `node`, once per module, and its teardown checks that `stop` undid all
of it. The operator image is built with podman (`rental_devenv.image`) and imported into the node's
containerd, so the chart runs the image this checkout builds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rental_devenv import controlplane, helm, image, node
from tests.conftest import Kubectl, _run_kubectl

TAG = "localhost/purifier-rental-operator:node"


def _missing() -> str:
    if os.geteuid() != 0:
        return "the node needs root (cgroups, mounts, iptables)"
    for tool in ("ip", "iptables-save", "runc", "gcc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/setup installs the node's Debian packages)"
    if not Path("/usr/lib/cni/ptp").exists():
        return "Debian's containernetworking-plugins are not installed"
    return ""


@dataclass
class NodeCluster:
    """A control plane with one Ready node; kubectl and helm pointed at it."""

    plane: controlplane.ControlPlane
    node: node.Node
    helm_binary: Path

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    @property
    def kubectl(self) -> Kubectl:
        return _run_kubectl(self.kubeconfig)

    def helm(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return helm.run(self.helm_binary, *args, kubeconfig=self.kubeconfig, timeout=timeout)


def _skip_unless_possible() -> None:
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the node tests must run in CI: {missing}")
        pytest.skip(missing)


@pytest.fixture(scope="session")
def operator_image_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operator image this checkout builds, saved for containerd: once per session (about 30 s)."""
    _skip_unless_possible()
    try:
        base = image.ensure_podman()
    except image.PodmanUnavailableError as error:
        pytest.fail(f"podman is required to build the images the node runs: {error}")
    directory = tmp_path_factory.mktemp("node-image")
    image.build(TAG, base_image=base, log=directory / "image-build.log")
    return node.save_image(TAG, directory / "images")


@pytest.fixture(scope="module")
def node_cluster(
    tmp_path_factory: pytest.TempPathFactory, operator_image_archive: Path
) -> Iterator[NodeCluster]:
    _skip_unless_possible()
    helm_binary = helm.ensure_helm()
    archive = operator_image_archive
    directory = tmp_path_factory.mktemp("node-controlplane")
    plane = controlplane.ControlPlane(directory=directory / "plane", address=node.ADDRESS)
    the_node = node.Node(directory=directory / "plane" / "node", plane=plane)
    problems: list[str] = []
    try:
        # Another session's node (or `up --node`) may hold the machine's one node address for a while.
        node.setup_interface(wait_seconds=600)
        plane.start()
        the_node.start(images=[archive])
        print(f"\n[node] ready: {the_node.startup_seconds}")
        yield NodeCluster(plane=plane, node=the_node, helm_binary=helm_binary)
    finally:
        try:
            problems = the_node.stop()
        finally:
            plane.stop()
    assert not problems, "the node left traces on the host:\n" + "\n".join(problems)
