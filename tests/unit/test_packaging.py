"""The operator's packaging: what its wheel holds, and the image's hash-pinned requirements.

The wheel is built offline (no build isolation: the test extras' setuptools) from a copy of exactly
the files the image's build context lets in, so it is the wheel the Dockerfile installs. The reference
gateway is a development tool with a pyproject of its own (gateway/) and must not be in it.

The image installs its dependencies only from the locks in requirements/ (hash-pinned, made by
requirements/compile). They must still satisfy pyproject.toml: a dependency added or narrowed there
without regenerating them fails here, before an image build would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
IMAGE_LOCK = REPO / "requirements" / "image.txt"
BUILD_LOCK = REPO / "requirements" / "build.txt"
# The image's interpreter and platform, which requirements/compile resolves for.
IMAGE_ENVIRONMENT = {
    "python_version": "3.11",
    "python_full_version": "3.11.2",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "extra": "",
}


# -- the wheel ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    source = tmp_path_factory.mktemp("context")
    # What .dockerignore lets into the image's build context (everything else is excluded).
    for rule in (REPO / ".dockerignore").read_text().splitlines():
        if not rule.startswith("!"):
            continue
        path = rule[1:].rstrip("/")
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        if (REPO / path).is_dir():
            shutil.copytree(
                REPO / path, source / path, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        else:
            shutil.copy(REPO / path, source / path)
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index"),
            *("--wheel-dir", str(out), str(source)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [built] = out.glob("purifier_rental_operator-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def _dist_info(archive: zipfile.ZipFile, name: str) -> str:
    [path] = [n for n in archive.namelist() if n.endswith(f".dist-info/{name}")]
    return archive.read(path).decode()


def test_wheel_holds_the_operator_and_not_the_reference_gateway(wheel: zipfile.ZipFile) -> None:
    recorded = [line.split(",")[0] for line in _dist_info(wheel, "RECORD").splitlines()]
    assert "rental_operator/cli.py" in recorded
    assert "rental_operator/api/py.typed" in recorded
    packages = {path.split("/")[0] for path in recorded if ".dist-info/" not in path}
    assert packages == {"rental_operator"}, "no rental_gateway: a development tool (gateway/pyproject.toml)"
    scripts = _dist_info(wheel, "entry_points.txt")
    assert "rental-operator = rental_operator.cli:main" in scripts
    assert "rental-gateway" not in scripts


def test_wheel_declares_what_the_operator_imports(wheel: zipfile.ZipFile) -> None:
    declared = {
        canonicalize_name(Requirement(line.split(":", 1)[1]).name)
        for line in _dist_info(wheel, "METADATA").splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    assert "aiohttp" in declared, "MyPage's server is aiohttp (operator/mypage/server.py)"
    assert "requests" not in declared, "the operator does not use requests (only the tests do)"


def test_the_gateway_is_installed_with_the_development_tools() -> None:
    gateway = tomllib.loads((REPO / "gateway" / "pyproject.toml").read_text())
    assert gateway["project"]["scripts"] == {"rental-gateway": "rental_gateway.cli:main"}
    setup = (REPO / "scripts" / "setup").read_text()
    assert "-e ./tools -e ./gateway" in setup


# -- the image's locks ----------------------------------------------------------------------------------


def _pins(lock: Path) -> dict[str, tuple[str, list[str]]]:
    """{name: (version, hashes)} of a `uv pip compile --generate-hashes` file."""
    pins = {}
    for entry in lock.read_text().replace("\\\n", " ").splitlines():
        if not entry.strip() or entry.lstrip().startswith("#"):
            continue
        requirement, *options = entry.split()
        name, version = requirement.split("==")
        hashes = [option.removeprefix("--hash=") for option in options if option.startswith("--hash=")]
        pins[canonicalize_name(name)] = (version, hashes)
    return pins


def _unsatisfied(requirements: list[str], pins: dict[str, tuple[str, list[str]]]) -> list[str]:
    problems = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker and not requirement.marker.evaluate(IMAGE_ENVIRONMENT):
            continue
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None:
            problems.append(f"{requirement.name}: not in the lock")
        elif not requirement.specifier.contains(pinned[0], prereleases=True):
            problems.append(f"{requirement.name}=={pinned[0]} does not satisfy {requirement.specifier}")
    return problems


def test_image_lock_satisfies_the_projects_dependencies() -> None:
    """Run requirements/compile when this fails."""
    problems = _unsatisfied(PYPROJECT["project"]["dependencies"], _pins(IMAGE_LOCK))
    assert problems == []


def test_build_lock_is_the_build_system_of_pyproject() -> None:
    """Run requirements/compile when this fails."""
    requires = PYPROJECT["build-system"]["requires"]
    sources = [
        line.strip()
        for line in (REPO / "requirements" / "build.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert sources == requires
    assert _unsatisfied(requires, _pins(BUILD_LOCK)) == []


@pytest.mark.parametrize("lock", [IMAGE_LOCK, BUILD_LOCK], ids=lambda path: path.name)
def test_every_pin_carries_hashes_and_says_how_it_was_made(lock: Path) -> None:
    pins = _pins(lock)
    assert pins
    assert [name for name, (_, hashes) in pins.items() if not hashes] == []
    assert all(digest.startswith("sha256:") for _, hashes in pins.values() for digest in hashes)
    assert "#    requirements/compile" in lock.read_text().splitlines()[:3]
