"""`rental-controlplane`: build, start, stop and inspect the local control plane from a shell.

`up` leaves etcd, kube-apiserver and kube-controller-manager running in the background (their pids
go into the state directory) and prints how to point kubectl at them; `down` stops them. The demo
script uses this; tests use `rental_devenv.controlplane` directly with a throwaway directory.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from rental_devenv import build, controlplane

__all__ = ["main"]


def _default_directory() -> Path:
    return build.cache_root() / "run" / "default"


def _up(directory: Path, fresh: bool) -> int:
    if (directory / "state.json").exists():
        existing = controlplane.ControlPlane.load(directory)
        states = existing.running()
        if all(states.values()):
            print(f"control plane already running; export KUBECONFIG={existing.kubeconfig}")
            return 0
        existing.stop()
    if fresh and directory.exists():
        shutil.rmtree(directory)
    plane = controlplane.ControlPlane(directory=directory, tie_to_parent=False)
    started = time.monotonic()
    try:
        plane.start()
    except controlplane.ControlPlaneError as error:
        print(f"error: {error}", file=sys.stderr)
        plane.stop()
        return 1
    print(f"control plane up in {time.monotonic() - started:.1f}s at {plane.server}")
    for component, seconds in plane.startup_seconds.items():
        print(f"  {component:<24} ready in {seconds:5.1f}s  log: {plane.log_path(component)}")
    print("use it with:")
    print(f"  export KUBECONFIG={plane.kubeconfig}")
    print("  kubectl get namespaces")
    print("stop it with: rental-controlplane down")
    return 0


def _down(directory: Path) -> int:
    if not (directory / "state.json").exists():
        print("no control plane recorded in", directory)
        return 0
    controlplane.ControlPlane.load(directory).stop()
    print("control plane stopped")
    return 0


def _status(directory: Path) -> int:
    if not (directory / "state.json").exists():
        print("not started")
        return 1
    plane = controlplane.ControlPlane.load(directory)
    states = plane.running()
    for component, alive in states.items():
        print(f"{component:<24} {'running' if alive else 'stopped'}")
    print(f"KUBECONFIG={plane.kubeconfig}")
    return 0 if all(states.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rental-controlplane",
        description="A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) "
        "built from Go modules and run on 127.0.0.1.",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=_default_directory(),
        help="state directory (certificates, etcd data, logs, kubeconfig); default: %(default)s",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build (or find in the cache) the control-plane binaries")
    up = commands.add_parser("up", help="start the control plane in the background")
    up.add_argument("--fresh", action="store_true", help="discard previous etcd data first")
    commands.add_parser("down", help="stop the control plane")
    commands.add_parser("status", help="show which components run")
    commands.add_parser("kubeconfig", help="print the kubeconfig path")
    args = parser.parse_args(argv)

    if args.command == "build":
        binaries = build.ensure_binaries()
        for path in vars(binaries).values():
            print(path)
        return 0
    if args.command == "up":
        return _up(args.dir, args.fresh)
    if args.command == "down":
        return _down(args.dir)
    if args.command == "status":
        return _status(args.dir)
    print(args.dir / "kubeconfig")
    return 0


if __name__ == "__main__":
    sys.exit(main())
