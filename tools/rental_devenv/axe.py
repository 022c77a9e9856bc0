"""axe-core, the accessibility checker the browser tests run in Chromium, fetched once from npm.

The customer web app must show 0 serious or critical axe violations on every page (issue 15). axe-core
is a JavaScript file the tests inject into each page; it comes from the npm registry at a pinned
version, installed with `npm install` into the cache outside the repository (nothing under
node_modules in the clone, nothing fetched per test run). Called by `scripts/setup` (`python -m
rental_devenv.axe` installs it if needed and prints the path) and by `tests/mypage/`'s browser tests.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rental_devenv import build

__all__ = ["AXE_VERSION", "ensure_axe", "main"]

# Pinned: a newer axe-core adds rules, and a new rule failing is a change to review, not a surprise.
AXE_VERSION = "4.14.1"


def _log(message: str) -> None:
    print(f"[axe] {message}", file=sys.stderr, flush=True)


def ensure_axe() -> Path:
    """The path of `axe.min.js` of AXE_VERSION, installed from the npm registry the first time."""
    target = build.cache_root() / "npm" / f"axe-core@{AXE_VERSION}"
    script = target / "node_modules" / "axe-core" / "axe.min.js"
    if script.exists():
        return script
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is required to fetch axe-core (apt-get install -y npm)")
    with build.exclusive(build.cache_root() / "npm.lock"):
        if script.exists():
            return script  # another process installed it while we waited
        started = time.monotonic()
        _log(f"installing axe-core {AXE_VERSION} from the npm registry into {target} (cached afterwards)")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="axe-core-", dir=target.parent))
        try:
            result = subprocess.run(
                [
                    npm,
                    "install",
                    "--prefix",
                    str(staging),
                    "--no-save",
                    "--no-audit",
                    "--no-fund",
                    "--ignore-scripts",
                    f"axe-core@{AXE_VERSION}",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise RuntimeError(f"npm install axe-core@{AXE_VERSION} failed:\n{result.stderr.strip()}")
            if not (staging / "node_modules" / "axe-core" / "axe.min.js").exists():
                raise RuntimeError(f"npm install axe-core@{AXE_VERSION} left no axe.min.js in {staging}")
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _log(f"axe-core {AXE_VERSION} installed in {time.monotonic() - started:.0f}s: {script}")
    return script


def main() -> int:
    print(ensure_axe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
