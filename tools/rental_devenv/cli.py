"""`rental-controlplane`: build, start, stop and inspect the local control plane from a shell.

`up` leaves etcd, kube-apiserver and kube-controller-manager running in the background (their pids
go into the state directory) and prints how to point kubectl at them; `down` stops them. `up --node`
adds a development node (`rental_devenv.node`: containerd, kubelet, kube-scheduler, kube-proxy, the
operator image imported) so the Helm chart's pods run; `down` then also undoes what the node changed
on the host. The demo
script uses this; tests use `rental_devenv.controlplane` directly with a throwaway directory.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from rental_devenv import build, controlplane, image, node

__all__ = ["main"]


def _default_directory() -> Path:
    return build.cache_root() / "run" / "default"


def _up(directory: Path, fresh: bool, with_node: bool, operator_image: str) -> int:
    if (directory / "state.json").exists():
        existing = controlplane.ControlPlane.load(directory)
        states = existing.running()
        node_running = all(node.Node.load(directory / "node", existing).running().values())
        if all(states.values()) and (not with_node or node_running):
            print(f"control plane already running; export KUBECONFIG={existing.kubeconfig}")
            return 0
        _down(directory)
    if fresh and directory.exists():
        shutil.rmtree(directory)
    address = node.ADDRESS if with_node else "127.0.0.1"
    plane = controlplane.ControlPlane(directory=directory, tie_to_parent=False, address=address)
    development_node = node.Node(directory=directory / "node", plane=plane, tie_to_parent=False)
    started = time.monotonic()
    try:
        if with_node:
            node.setup_interface()
        plane.start()
        if with_node:
            image.build(operator_image, base_image=image.ensure_podman())
            archive = node.save_image(operator_image, directory / "node" / "images")
            development_node.start(images=[archive])
    except (controlplane.ControlPlaneError, node.NodeError, image.PodmanUnavailableError) as error:
        print(f"error: {error}", file=sys.stderr)
        _down(directory)
        return 1
    print(f"control plane up in {time.monotonic() - started:.1f}s at {plane.server}")
    for component, seconds in {**plane.startup_seconds, **development_node.startup_seconds}.items():
        log = (
            plane.log_path(component)
            if component in plane.startup_seconds
            else development_node.log_path(component)
        )
        print(f"  {component:<24} ready in {seconds:5.1f}s  log: {log}")
    if with_node:
        print(
            f"node {node.NODE_NAME} Ready at {node.ADDRESS};"
            f" {operator_image} imported (use it with imagePullPolicy: Never)"
        )
    print("use it with:")
    print(f"  export KUBECONFIG={plane.kubeconfig}")
    print("  kubectl get namespaces")
    print("stop it with: rental-controlplane down")
    return 0


def _down(directory: Path) -> int:
    if not (directory / "state.json").exists():
        print("no control plane recorded in", directory)
        return 0
    plane = controlplane.ControlPlane.load(directory)
    problems = []
    if (directory / "node" / "node.json").exists():
        problems = node.Node.load(directory / "node", plane).stop()
    plane.stop()
    if problems:
        print("node stopped, but the host is not as it was:", *problems, sep="\n  ", file=sys.stderr)
        return 1
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
    up.add_argument(
        "--node",
        action="store_true",
        help=f"also run a node ({node.NODE_NAME} on {node.ADDRESS}) so pods run; needs root",
    )
    up.add_argument(
        "--operator-image",
        default="localhost/purifier-rental-operator:dev",
        help="with --node: the operator image to build with podman and import (default: %(default)s)",
    )
    commands.add_parser("down", help="stop the control plane")
    commands.add_parser("status", help="show which components run")
    commands.add_parser("kubeconfig", help="print the kubeconfig path")
    args = parser.parse_args(argv)

    if args.command == "build":
        for binaries in (build.ensure_binaries(), build.ensure_node_binaries()):
            for path in vars(binaries).values():
                print(path)
        return 0
    if args.command == "up":
        return _up(args.dir, args.fresh, args.node, args.operator_image)
    if args.command == "down":
        return _down(args.dir)
    if args.command == "status":
        return _status(args.dir)
    print(args.dir / "kubeconfig")
    return 0


if __name__ == "__main__":
    sys.exit(main())
