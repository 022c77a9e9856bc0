"""`rental-controlplane up` leaves a working control plane behind; `down` stops every component."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rental_devenv import controlplane

pytestmark = pytest.mark.cluster

CLI = str(Path(sys.executable).parent / "rental-controlplane")
KUBECTL = str(Path(sys.executable).parent / "kubectl")


def test_up_status_down(tmp_path: Path) -> None:
    directory = tmp_path / "plane"
    up = subprocess.run([CLI, "--dir", str(directory), "up"], capture_output=True, text=True, timeout=300)
    try:
        assert up.returncode == 0, up.stderr
        assert f"export KUBECONFIG={directory / 'kubeconfig'}" in up.stdout
        namespaces = subprocess.run(
            [KUBECTL, f"--kubeconfig={directory / 'kubeconfig'}", "get", "namespaces"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "kube-system" in namespaces.stdout, namespaces.stderr
        status = subprocess.run([CLI, "--dir", str(directory), "status"], capture_output=True, text=True)
        assert status.returncode == 0 and status.stdout.count("running") == 3
    finally:
        down = subprocess.run([CLI, "--dir", str(directory), "down"], capture_output=True, text=True)
    assert down.returncode == 0
    plane = controlplane.ControlPlane.load(directory)
    assert not any(plane.running().values())
