"""Building and running the operator's container image with podman, on machines without Docker.

There is no Docker engine where this project is developed and no image registry can be reached, but
Debian's podman builds and runs images once a few sandbox limits are worked around: the `runc`
runtime, explicit nofile/nproc ulimits (the sandbox cannot raise them), host networking, and a base
image made locally by debootstrap (`scripts/install-podman` installs podman and makes that image).
This module is the one place that knows those flags; the image test (`tests/image/`) and anyone
building by hand (`python -m rental_devenv.image build`) go through it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BASE_IMAGE",
    "Built",
    "PodmanUnavailableError",
    "build",
    "ensure_podman",
    "image_size",
    "inspect",
    "main",
    "podman",
    "run_flags",
]

REPO = Path(__file__).resolve().parent.parent.parent
BASE_IMAGE = "localhost/purifier-rental/base:bookworm"
_INSTALL_SCRIPT = REPO / "scripts" / "install-podman"
# What the sandbox needs on every `build` and `run` (see the module docstring).
_RUNTIME = ("--runtime", "runc")
_LIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000")


class PodmanUnavailableError(RuntimeError):
    """podman (or the local base image) could not be installed on this machine; the message says why."""


@dataclass(frozen=True)
class Built:
    tag: str
    seconds: float
    size_bytes: int


def _log(message: str) -> None:
    print(f"[image] {message}", file=sys.stderr, flush=True)


def ensure_podman() -> str:
    """Install podman and the local base image if needed (idempotent); return the base image's name."""
    result = subprocess.run(
        ["bash", str(_INSTALL_SCRIPT)], capture_output=True, text=True, check=False, timeout=1800
    )
    if result.returncode != 0 or shutil.which("podman") is None:
        raise PodmanUnavailableError(
            f"scripts/install-podman failed ({result.returncode}):\n{result.stderr.strip()[-2000:]}"
        )
    return BASE_IMAGE


def podman(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `podman --runtime runc ARGS`; on failure the exception carries podman's output."""
    result = subprocess.run(
        ["podman", *_RUNTIME, *args], capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed ({result.returncode}):\n{result.stderr.strip()}")
    return result


def build(tag: str, *, base_image: str = BASE_IMAGE, context: Path = REPO, log: Path | None = None) -> Built:
    """Build the repository's Dockerfile as `tag` on top of `base_image`; time and size it."""
    _log(f"building {tag} from {context / 'Dockerfile'} (base {base_image})")
    started = time.monotonic()
    command = [
        "podman",
        *_RUNTIME,
        "build",
        "--network",
        "host",
        *_LIMITS,
        # pip inside the build reaches PyPI through this machine's certificate bundle.
        "--volume",
        "/etc/ssl/certs:/etc/ssl/certs:ro",
        "--build-arg",
        f"BASE_IMAGE={base_image}",
        "--pull=never",
        "--tag",
        tag,
        str(context),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
    if log is not None:
        log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(
            f"podman build failed ({result.returncode}):\n{(result.stdout + result.stderr)[-4000:]}"
        )
    seconds = time.monotonic() - started
    # Untagged images of earlier builds (builder stages, replaced tags) would pile up build after
    # build; only images carrying the Dockerfile's own label are touched.
    podman("image", "prune", "--force", "--filter", "label=io.purifier-rental.build=true", check=False)
    size = image_size(tag)
    _log(f"built {tag} in {seconds:.0f}s: {size / 1e6:.0f} MB")
    return Built(tag=tag, seconds=seconds, size_bytes=size)


def image_size(tag: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())


def inspect(tag: str) -> dict[str, object]:
    """The image's configuration (User, Entrypoint, Cmd, Env, ...), as podman reports it."""
    config: dict[str, object] = json.loads(podman("image", "inspect", tag).stdout)[0]["Config"]
    return config


def run_flags(
    *, env: Mapping[str, str] | None = None, volumes: Sequence[str] = (), read_only: bool = True
) -> list[str]:
    """Flags of `podman run` that mirror the chart's pod: host network (to reach a control plane on
    127.0.0.1), read-only root filesystem (podman mounts a tmpfs on /tmp), no capabilities."""
    flags = [*_LIMITS, "--network", "host", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    if read_only:
        flags.append("--read-only")
    for volume in volumes:
        flags += ["--volume", volume]
    for key, value in (env or {}).items():
        flags += ["--env", f"{key}={value}"]
    return flags


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rental_devenv.image", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build_command = commands.add_parser("build", help="install podman if needed, then build the image")
    build_command.add_argument("--tag", default="localhost/purifier-rental-operator:dev")
    args = parser.parse_args(argv)
    if args.command == "build":
        try:
            base = ensure_podman()
        except PodmanUnavailableError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        built = build(args.tag, base_image=base)
        print(f"{built.tag} {built.size_bytes / 1e6:.0f} MB, built in {built.seconds:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
