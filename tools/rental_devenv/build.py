"""Builds etcd, kube-apiserver and kube-controller-manager (and the node's binaries) from Go modules, once.

Nothing can be downloaded from release sites where this project is developed, but the Go module proxy
is reachable, and Kubernetes and etcd are ordinary Go modules. The wrapper modules in
`tools/controlplane/{etcd,kube}` pin the versions (and every staging-module `replace`); this module
compiles them into a directory keyed by those pins, so a changed pin rebuilds and an unchanged one
costs nothing. A cold build takes minutes, so it reports what it is doing and how far along it is.

The development node (`rental_devenv.node`) needs kubelet, kube-scheduler and kube-proxy from the same
Kubernetes module (`tools/node/kube` pins the same version, which `ensure_node_binaries` checks) and
containerd with its runc shim and `ctr` (`tools/node/containerd`); they are built separately, on demand,
so the control plane alone never pays for them.

Called by `rental_devenv.controlplane`, `rental_devenv.node` (and the `rental-controlplane build` command).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Binaries",
    "NodeBinaries",
    "cache_root",
    "ensure_binaries",
    "ensure_node_binaries",
    "exclusive",
    "go_build",
    "go_env",
    "kubernetes_version",
    "module_file",
    "require_go",
    "required_version",
]

_SOURCES = Path(__file__).resolve().parent.parent / "controlplane"
_NODE_SOURCES = Path(__file__).resolve().parent.parent / "node"
_CONTAINERD = "github.com/containerd/containerd/v2"
_PROGRESS_EVERY_SECONDS = 15.0


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path


def cache_root() -> Path:
    """Where binaries and control-plane state live: outside the repository, shared by clones."""
    configured = os.environ.get("RENTAL_DEVENV_CACHE")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "purifier-rental"


def required_version(go_mod: Path, module: str) -> str:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod.read_text(), re.M)
    if not match:
        raise RuntimeError(f"{go_mod}: no requirement on {module}")
    return match.group(1)


def kubernetes_version() -> str:
    return required_version(_SOURCES / "kube" / "go.mod", "k8s.io/kubernetes")


def _etcd_version() -> str:
    return required_version(_SOURCES / "etcd" / "go.mod", "go.etcd.io/etcd/server/v3")


def _sources_digest(sources: Path = _SOURCES) -> str:
    digest = hashlib.sha256()
    for path in sorted(sources.rglob("*")):
        if path.is_file() and path.suffix in {".go", ".mod", ".sum"}:
            digest.update(path.relative_to(sources).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


@dataclass(frozen=True)
class NodeBinaries:
    kubelet: Path
    kube_scheduler: Path
    kube_proxy: Path
    containerd: Path
    containerd_shim_runc_v2: Path
    ctr: Path


def _log(message: str) -> None:
    print(f"[controlplane] {message}", file=sys.stderr, flush=True)


def require_go(purpose: str) -> None:
    """Fail with a clear message, naming `purpose`, when the Go toolchain is not on PATH."""
    if shutil.which("go") is None:
        raise RuntimeError(f"the Go toolchain is required to {purpose} (`go` not on PATH)")


def go_env(**extra: str) -> dict[str, str]:
    """The environment for the go command, with `extra` variables."""
    env = dict(os.environ)
    # A pure-Go static build; GOTOOLCHAIN=local keeps the go command from switching toolchains
    # behind our back (the modules we build ask for nothing newer than this machine's Go).
    env.update(CGO_ENABLED="0", GOTOOLCHAIN=env.get("GOTOOLCHAIN", "local"), **extra)
    return env


def _go(args: list[str], cwd: Path) -> str:
    result = subprocess.run(["go", *args], cwd=cwd, env=go_env(), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"go {' '.join(args)} failed in {cwd}:\n{result.stderr.strip()}")
    return result.stdout


def module_file(module: str, version: str, relative: str) -> Path:
    """A file as Go module `module`@`version` ships it (downloaded once; read-only in GOMODCACHE)."""
    require_go(f"download {module}")
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        env=go_env(GOFLAGS="-mod=mod"),
        capture_output=True,
        text=True,
        check=False,
        cwd=tempfile.gettempdir(),  # outside any module: a plain download into the module cache
    )
    if result.returncode != 0:
        raise RuntimeError(f"go mod download {module}@{version} failed:\n{result.stderr.strip()}")
    path = Path(json.loads(result.stdout)["Dir"]) / relative
    if not path.exists():
        raise RuntimeError(f"{module}@{version} has no {relative}")
    return path


def go_build(module_dir: Path, packages: list[str], out_dir: Path, ldflags: str, what: str) -> None:
    """`go build -v` prints each package it compiles; count them against the dependency total."""
    started = time.monotonic()
    _log(f"{what}: downloading Go modules (cached in {_go(['env', 'GOMODCACHE'], module_dir).strip()})")
    _go(["mod", "download"], module_dir)
    total = len(_go(["list", "-deps", *packages], module_dir).split())
    _log(f"{what}: compiling up to {total} packages (a cold build takes minutes; a warm one seconds)")
    command = ["go", "build", "-v", "-trimpath", "-ldflags", ldflags, "-o", f"{out_dir}/", *packages]
    process = subprocess.Popen(
        command, cwd=module_dir, env=go_env(), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    assert process.stderr is not None
    compiled, last_report, errors = 0, started, []
    for raw in process.stderr:
        line = raw.rstrip()
        if re.fullmatch(r"[\w.\-/~]+", line):
            compiled += 1
        else:
            errors.append(line)
        now = time.monotonic()
        if now - last_report >= _PROGRESS_EVERY_SECONDS:
            last_report = now
            percent = min(99, 100 * compiled // max(total, 1))
            _log(f"{what}: {compiled}/{total} packages compiled (~{percent}%), {now - started:.0f}s elapsed")
    if process.wait() != 0:
        raise RuntimeError(f"building {what} failed:\n" + "\n".join(errors[-40:]))
    _log(f"{what}: built in {time.monotonic() - started:.0f}s")


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _version_stamp(k8s: str) -> str:
    """Without the stamp `/version` (and the kubelet's node status) reports `v0.0.0-master`."""
    return " ".join(
        f"-X k8s.io/component-base/version.{key}={value}"
        for key, value in {
            "gitVersion": k8s,
            "gitMajor": "1",
            "gitMinor": k8s.split(".")[1],
            "gitTreeState": "clean",
        }.items()
    )


def ensure_binaries() -> Binaries:
    """Return the cached binaries, building them first if this version has never been built here."""
    require_go("build the control plane")
    k8s, etcd = kubernetes_version(), _etcd_version()
    target = cache_root() / "bin" / f"k8s-{k8s}-etcd-{etcd}-{_sources_digest()}"
    binaries = Binaries(
        etcd=target / "etcd",
        kube_apiserver=target / "kube-apiserver",
        kube_controller_manager=target / "kube-controller-manager",
    )
    if all(p.exists() for p in vars(binaries).values()):
        return binaries
    with exclusive(cache_root() / "build.lock"):
        if all(p.exists() for p in vars(binaries).values()):
            return binaries  # another process built it while we waited for the lock
        started = time.monotonic()
        _log(f"building the control plane (Kubernetes {k8s}, etcd {etcd}) into {target}")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="building-", dir=target.parent))
        try:
            go_build(_SOURCES / "etcd", ["."], staging, "-s -w", f"etcd {etcd} (1/2)")
            go_build(
                _SOURCES / "kube",
                ["./cmd/kube-apiserver", "./cmd/kube-controller-manager"],
                staging,
                f"-s -w {_version_stamp(k8s)}",
                f"kube-apiserver and kube-controller-manager {k8s} (2/2)",
            )
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _log(f"control plane built in {time.monotonic() - started:.0f}s")
    return binaries


def ensure_node_binaries() -> NodeBinaries:
    """kubelet, kube-scheduler, kube-proxy, containerd, its runc shim and ctr, built once per pin set."""
    require_go("build the development node")
    k8s = kubernetes_version()
    node_k8s = required_version(_NODE_SOURCES / "kube" / "go.mod", "k8s.io/kubernetes")
    if node_k8s != k8s:
        raise RuntimeError(
            f"tools/node/kube pins k8s.io/kubernetes {node_k8s} but the control plane runs {k8s}:"
            " the node must be built from the same module version"
        )
    containerd = required_version(_NODE_SOURCES / "containerd" / "go.mod", _CONTAINERD)
    target = cache_root() / "bin" / f"node-k8s-{k8s}-containerd-{containerd}-{_sources_digest(_NODE_SOURCES)}"
    binaries = NodeBinaries(
        kubelet=target / "kubelet",
        kube_scheduler=target / "kube-scheduler",
        kube_proxy=target / "kube-proxy",
        containerd=target / "containerd",
        containerd_shim_runc_v2=target / "containerd-shim-runc-v2",
        ctr=target / "ctr",
    )
    if all(p.exists() for p in vars(binaries).values()):
        return binaries
    with exclusive(cache_root() / "build.lock"):
        if all(p.exists() for p in vars(binaries).values()):
            return binaries
        started = time.monotonic()
        _log(f"building the node (Kubernetes {k8s}, containerd {containerd}) into {target}")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="building-", dir=target.parent))
        try:
            go_build(
                _NODE_SOURCES / "containerd",
                [f"{_CONTAINERD}/cmd/{name}" for name in ("containerd", "containerd-shim-runc-v2", "ctr")],
                staging,
                f"-s -w -X {_CONTAINERD}/version.Version={containerd}",
                f"containerd, containerd-shim-runc-v2 and ctr {containerd} (1/2)",
            )
            go_build(
                _NODE_SOURCES / "kube",
                ["./cmd/kubelet", "./cmd/kube-scheduler", "./cmd/kube-proxy"],
                staging,
                f"-s -w {_version_stamp(k8s)}",
                f"kubelet, kube-scheduler and kube-proxy {k8s} (2/2)",
            )
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _log(f"node built in {time.monotonic() - started:.0f}s")
    return binaries
