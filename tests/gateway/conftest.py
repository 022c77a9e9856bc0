"""Process-level tests of the reference gateway: each test starts it as a real process on 127.0.0.1.

`start_gateway(*flags, ...)` wraps `rental_gateway.testing.GatewayProcess` with the test's own temp
directory for the ledger and the log; every gateway a test started is stopped with SIGTERM at the end
and must exit 0. Until the project's packaging maps `rental_gateway` to `gateway/`, a throwaway
directory holding a `rental_gateway` symlink goes first on `sys.path` (and from there onto the
child's PYTHONPATH, see `GatewayProcess`).
"""

from __future__ import annotations

import atexit
import importlib.util
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from rental_gateway import testing

GATEWAY_SOURCE = Path(__file__).resolve().parents[2] / "gateway"

if importlib.util.find_spec("rental_gateway") is None:
    _links = Path(tempfile.mkdtemp(prefix="rental-gateway-path-"))
    (_links / "rental_gateway").symlink_to(GATEWAY_SOURCE, target_is_directory=True)
    sys.path.insert(0, str(_links))
    atexit.register(shutil.rmtree, _links, True)


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[..., testing.GatewayProcess]]:
    from rental_gateway import testing  # noqa: PLC0415 - importable only after the path set-up

    started: list[testing.GatewayProcess] = []

    def start(*flags: str, db: Path | None = None, api_key: str | None = None) -> testing.GatewayProcess:
        gateway = testing.GatewayProcess(
            *flags,
            db=db or tmp_path / "ledger.sqlite3",
            api_key=api_key,
            log_path=tmp_path / f"gateway-{len(started)}.log",
        )
        started.append(gateway)
        gateway.start()
        return gateway

    yield start
    for gateway in started:
        status = gateway.stop()
        if gateway.url:  # it started, so it must stop cleanly
            assert status == 0, f"gateway exited {status} on SIGTERM; log:\n{gateway.log_text()}"
