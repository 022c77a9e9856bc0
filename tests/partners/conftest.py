"""The reference gateway (`gateway/`, package `rental_gateway`) as a real process, for the partner clients.

One gateway per module, started with `rental_gateway.testing.GatewayProcess` (the harness the gateway
ships for exactly this), with an API key so every client call also proves the Bearer header, and
without auto-delivery so a test moves parcels itself. `POST /admin/reset` before each test empties the
ledger, zeroes the counters and clears the faults. Until the packaging maps `rental_gateway` to
`gateway/`, a throwaway directory holding a `rental_gateway` symlink goes first on `sys.path`, and
`GatewayProcess` passes it on to the child's PYTHONPATH.
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

from rental_operator import config

if TYPE_CHECKING:
    from rental_gateway import testing

GATEWAY_SOURCE = Path(__file__).resolve().parents[2] / "gateway"
API_KEY = "gw-test-key"

if importlib.util.find_spec("rental_gateway") is None:
    _links = Path(tempfile.mkdtemp(prefix="rental-gateway-path-"))
    (_links / "rental_gateway").symlink_to(GATEWAY_SOURCE, target_is_directory=True)
    sys.path.insert(0, str(_links))
    atexit.register(shutil.rmtree, _links, True)


@pytest.fixture(scope="module")
def module_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testing.GatewayProcess]:
    from rental_gateway import testing  # noqa: PLC0415 - importable only after the path set-up

    directory = tmp_path_factory.mktemp("gateway")
    gateway = testing.GatewayProcess(
        "--auto-deliver-seconds",
        "0",
        db=directory / "ledger.sqlite3",
        api_key=API_KEY,
        log_path=directory / "gateway.log",
    )
    gateway.start()
    yield gateway
    status = gateway.stop()
    assert status == 0, f"gateway exited {status} on SIGTERM; log:\n{gateway.log_text()}"


@pytest.fixture
def gateway(module_gateway: testing.GatewayProcess) -> testing.GatewayProcess:
    module_gateway.reset()
    return module_gateway


MakeSettings = Callable[..., config.Settings]


@pytest.fixture
def make_settings(gateway: testing.GatewayProcess) -> MakeSettings:
    def make(**variables: str) -> config.Settings:
        """Every partner at the gateway with its key; `variables` are RENTAL_* values without prefix."""
        environ = {
            "RENTAL_PAYMENT_URL": gateway.url,
            "RENTAL_PAYMENT_API_KEY": API_KEY,
            "RENTAL_SHIPPING_URL": gateway.url,
            "RENTAL_SHIPPING_API_KEY": API_KEY,
            "RENTAL_SMS_URL": gateway.url,
            "RENTAL_SMS_API_KEY": API_KEY,
        }
        environ.update({f"RENTAL_{name.upper()}": value for name, value in variables.items()})
        return config.load(environ)

    return make
