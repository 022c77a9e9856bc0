"""The container image, built with podman from the repository's Dockerfile and run for real.

The honest check that the Dockerfile works: build it (on a base image made locally, since no
registry can be reached), look inside (installed from the wheel, non-root, no sources, no pip), then
run the operator from it against the local control plane, with the chart's restrictions (read-only
root filesystem, no capabilities), and watch a rental reach Confirmed through the reference gateway
running on the host. Marked `image`: slow, run by `.ci/run` through `scripts/test`.
The image's size and build time are printed (`pytest -s` shows them) for docs/deployment.md.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rental_devenv import image, testkit
from rental_gateway import testing

pytestmark = pytest.mark.image

REPO = Path(__file__).resolve().parents[2]
TAG = "localhost/purifier-rental-operator:test"
# The application's share of the image (the virtualenv layer): a guard against an accidental
# doubling (sources, pip caches, build tools left in the final stage), not a target.
MAX_APP_LAYER_BYTES = 160_000_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> image.Built:
    try:
        base = image.ensure_podman()
    except image.PodmanUnavailableError as error:
        if os.environ.get("CI"):
            pytest.fail(f"podman is required in CI: {error}")
        pytest.skip(f"podman cannot be installed on this machine: {error}")
    result = image.build(TAG, base_image=base, log=tmp_path_factory.mktemp("image") / "build.log")
    base_size = image.image_size(base)
    added = result.size_bytes - base_size
    print(
        f"\n[image] {TAG}: {result.size_bytes / 1e6:.0f} MB in total, {added / 1e6:.0f} MB on top of"
        f" the base ({base_size / 1e6:.0f} MB); built in {result.seconds:.0f}s"
    )
    return result


def _in_image(*command: str) -> str:
    result = image.podman("run", "--rm", *image.run_flags(), "--entrypoint", command[0], TAG, *command[1:])
    return result.stdout


def test_image_is_the_installed_wheel_run_as_non_root(built: image.Built) -> None:
    config = image.inspect(TAG)
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/opt/venv/bin/rental-operator"]
    # The operator comes from the virtualenv's site-packages, not from a source folder.
    where = _in_image(
        "/opt/venv/bin/python",
        "-c",
        "import os, rental_operator.cli; print(rental_operator.cli.__file__);"
        " print(os.getuid()); print(os.path.exists('/src'))",
    ).split()
    assert where[0].startswith("/opt/venv/lib/python3") and "/site-packages/rental_operator/" in where[0]
    assert where[1:] == ["10001", "False"]
    # The reference gateway is a development tool: neither its package nor its command ships.
    gateway = _in_image(
        "/opt/venv/bin/python",
        "-c",
        "import importlib.util as u, os; print(u.find_spec('rental_gateway'));"
        " print(os.path.exists('/opt/venv/bin/rental-gateway'))",
    )
    assert gateway.split() == ["None", "False"]
    # pip and setuptools are gone: nothing can be installed into the running image.
    missing = _in_image("/opt/venv/bin/python", "-c", "import importlib.util as u; print(u.find_spec('pip'))")
    assert missing.strip() == "None"
    usage = _in_image("/opt/venv/bin/rental-operator", "--help")
    assert "run" in usage
    base_size = image.image_size(image.BASE_IMAGE)
    assert built.size_bytes - base_size < MAX_APP_LAYER_BYTES


def test_a_missing_setting_stops_the_container_with_one_line(built: image.Built) -> None:
    result = image.podman("run", "--rm", *image.run_flags(), TAG, "run", check=False)
    assert result.returncode == 2
    assert "RENTAL_PAYMENT_URL" in result.stderr


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[testing.GatewayProcess]:
    with testing.GatewayProcess(
        "--quiet", "--auto-deliver-seconds", "1", db=tmp_path / "ledger.sqlite3", log_path=tmp_path / "gw.log"
    ) as process:
        yield process


@pytest.fixture
def container_kubeconfig(kubeconfig: Path, tmp_path: Path) -> Path:
    """A copy of the test kubeconfig readable by the image's user only (uid 10001, mode 0600)."""
    copy = tmp_path / "kubeconfig-for-container"
    shutil.copyfile(kubeconfig, copy)
    copy.chmod(0o600)
    os.chown(copy, 10001, 10001)
    return copy


def test_the_operator_from_the_image_confirms_a_rental(
    built: image.Built,
    namespace: str,
    kubeconfig: Path,
    container_kubeconfig: Path,
    gateway: testing.GatewayProcess,
) -> None:
    liveness = _free_port()
    name = f"rental-operator-{uuid.uuid4().hex[:8]}"
    env = {
        "RENTAL_PAYMENT_URL": gateway.url,
        "RENTAL_SHIPPING_URL": gateway.url,
        "RENTAL_SMS_URL": gateway.url,
        "RENTAL_NAMESPACES": namespace,
        "RENTAL_SHIPPING_POLL_SECONDS": "0.5",
        # Host networking: keep every server of the container on loopback, on free ports.
        "RENTAL_METRICS_PORT": str(_free_port()),
        "RENTAL_METRICS_ADDRESS": "127.0.0.1",
        "RENTAL_MYPAGE_PORT": str(_free_port()),
        "RENTAL_MYPAGE_HOST": "127.0.0.1",
    }
    image.podman(
        "run",
        "--detach",
        "--name",
        name,
        *image.run_flags(env=env, volumes=[f"{container_kubeconfig}:/etc/rental/kubeconfig:ro"]),
        TAG,
        "run",
        "--kubeconfig=/etc/rental/kubeconfig",
        f"--liveness=http://127.0.0.1:{liveness}/healthz",
    )
    try:

        def live() -> bool:
            state = image.podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
            if state != "true":
                raise AssertionError(f"the container stopped:\n{_logs(name)}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{liveness}/healthz", timeout=1) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        testkit.wait_for(live, timeout=60, what="the containerised operator's liveness endpoint")
        cluster = testkit.Cluster(kubeconfig, namespace)
        cluster.create(testkit.purifier("aqua", stock=2))
        cluster.create(testkit.rental("from-image", "aqua", customer="c-image"))
        try:
            testkit.wait_for(
                lambda: cluster.phase("rentals", "from-image") == "Confirmed",
                timeout=90,
                what="the rental confirmed by the operator in the container",
            )
        except TimeoutError as error:
            raise AssertionError(f"{error}\n--- container log ---\n{_logs(name)}") from None
        charges = [p for p in gateway.ledger()["payments"] if p["reference"] == f"{namespace}/from-image"]
        assert len(charges) == 1 and charges[0]["status"] == "approved"
        assert charges[0]["amount"] == 30_000  # period 1: one month's fee
        payment = cluster.get("payments", "from-image-p1")
        assert payment is not None and payment["status"]["transactionId"] == charges[0]["id"]
        # The container's user could read only its own copy of the credentials.
        assert container_kubeconfig.stat().st_uid == 10001
    finally:
        image.podman("stop", "--time", "20", name, check=False)
        stopped = image.podman("inspect", "--format", "{{.State.ExitCode}}", name, check=False).stdout.strip()
        image.podman("rm", "--force", name, check=False)
    # SIGTERM (what Kubernetes sends) ends the operator cleanly within the grace period.
    assert stopped == "0", f"exit code after SIGTERM: {stopped}"


def _logs(name: str) -> str:
    result = subprocess.run(["podman", "logs", "--tail", "60", name], capture_output=True, text=True)
    return result.stdout + result.stderr
