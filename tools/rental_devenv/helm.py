"""Helm, and the ServiceMonitor CRD, from Go modules, fetched once into the cache outside the repository.

No release binaries can be downloaded where this project is developed, but `helm.sh/helm/v3` is an
ordinary Go module (no replace directives), so `go install` builds the real helm; the binary goes into
a directory keyed by its version. The chart's optional ServiceMonitor needs the CRD of the Prometheus
Operator to be accepted by an API server; that CRD is taken from the `prometheus-operator` Go module
(never written by hand), which `go mod download` puts in the module cache.

Also the small helpers the chart tests share: running helm, rendering the chart into objects, and
picking objects out of a render. Called by the chart tests (`tests/helm/`) and `scripts/install-helm`;
`python -m rental_devenv.helm` builds helm if needed and prints the binary's path.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from rental_devenv import build

__all__ = [
    "CHART",
    "HELM_VERSION",
    "KUBE_VERSION",
    "PROMETHEUS_OPERATOR_VERSION",
    "ensure_helm",
    "main",
    "run",
    "select",
    "servicemonitor_crd",
    "template",
]

CHART = Path(__file__).resolve().parent.parent.parent / "charts" / "purifier-rental-operator"
# `helm template` assumes Kubernetes 1.20 unless told; the chart needs 1.30+ (native preStop sleep).
KUBE_VERSION = build.kubernetes_version()

HELM_VERSION = "v3.22.0"
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"
_PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator"
_SERVICEMONITOR_CRD = "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"


def _log(message: str) -> None:
    print(f"[helm] {message}", file=sys.stderr, flush=True)


def ensure_helm() -> Path:
    """The helm binary of HELM_VERSION, built with `go install` the first time (a minute or two)."""
    target = build.cache_root() / "bin" / f"helm-{HELM_VERSION}"
    binary = target / "helm"
    if binary.exists():
        return binary
    build.require_go("build helm")
    with build.exclusive(build.cache_root() / "helm.lock"):
        if binary.exists():
            return binary  # another process built it while we waited
        started = time.monotonic()
        _log(f"building helm {HELM_VERSION} from Go modules into {target} (cached afterwards)")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="helm-", dir=target.parent))
        try:
            result = subprocess.run(
                [
                    "go",
                    "install",
                    "-trimpath",
                    "-ldflags",
                    f"-s -w -X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
                    f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}",
                ],
                env=build.go_env(GOBIN=str(staging)),
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise RuntimeError(f"go install helm {HELM_VERSION} failed:\n{result.stderr.strip()}")
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _log(f"helm {HELM_VERSION} built in {time.monotonic() - started:.0f}s: {binary}")
    return binary


def servicemonitor_crd() -> Path:
    """The ServiceMonitor CRD file as the prometheus-operator module ships it (read-only, in GOMODCACHE)."""
    return build.module_file(_PROMETHEUS_OPERATOR, PROMETHEUS_OPERATOR_VERSION, _SERVICEMONITOR_CRD)


def run(
    binary: Path, *args: str, kubeconfig: Path | None = None, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run helm; with `check`, a failure raises with helm's output in the message."""
    command = [str(binary), *([f"--kubeconfig={kubeconfig}"] if kubeconfig else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}{result.stdout}"
        )
    return result


def template(
    binary: Path,
    *values_files: Path,
    set_values: Sequence[str] = (),
    release: str = "rental",
    namespace: str = "rental-system",
    chart: Path = CHART,
) -> list[dict[str, Any]]:
    """The chart's objects as `helm template` renders them (raises if rendering fails)."""
    args = ["template", release, str(chart), "--namespace", namespace, "--kube-version", KUBE_VERSION]
    for path in values_files:
        args += ["--values", str(path)]
    for assignment in set_values:
        args += ["--set", assignment]
    return [document for document in yaml.safe_load_all(run(binary, *args).stdout) if document]


def select(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """The objects of `kind` (and `name`, if given) in a render."""
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def main() -> int:
    print(ensure_helm())
    return 0


if __name__ == "__main__":
    sys.exit(main())
