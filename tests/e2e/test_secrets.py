"""Partner API keys from files, and never in the operator's output, end to end.

The gateway requires a key; the operator reads it from files (`RENTAL_*_API_KEY_FILE`, as the chart
mounts its Secret) ending in a newline, runs with `--verbose` (DEBUG logging, where every partner
call is logged), takes a rental to Confirmed (so the keys were read and sent), and goes through a
payment outage (so partner errors are logged). The key appears nowhere in its log nor in the
namespace's Events. A key file that cannot be read stops `rental-operator run` with one line naming
the variable.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from rental_devenv import testkit
from rental_gateway import testing
from rental_operator.reconcilers import rentals

KEY = "sk-e2e-3c1f9a7be2d54c08"


def test_keys_from_files_are_used_and_never_logged(
    cluster: testkit.Cluster, operator_factory: Any, tmp_path: Path
) -> None:
    key_file = tmp_path / "partner-key"
    key_file.write_text(KEY + "\n")  # as `kubectl create secret --from-file` of an edited file
    gateway = testing.GatewayProcess(
        "--quiet", "--auto-deliver-seconds", "1", db=tmp_path / "ledger.sqlite3", api_key=KEY
    )
    gateway.start()
    try:
        operator = operator_factory(
            gateway,
            launch=False,
            payment_api_key_file=str(key_file),
            shipping_api_key_file=str(key_file),
            sms_api_key_file=str(key_file),
            breaker_failure_threshold="1",
            breaker_reset_seconds="1",
        )
        operator.extra_args = ("--verbose",)
        operator.start()
        cluster.create(testkit.purifier("aqua", stock=3))
        cluster.create(testkit.rental("first", "aqua"))
        testkit.wait_for(
            lambda: cluster.phase("rentals", "first") == "Confirmed", timeout=60, what="first Confirmed"
        )

        # A payment outage: partner errors are logged, the breaker opens, the rental waits.
        gateway.set_faults(outage="unavailable", partners=["payments"])
        cluster.create(testkit.rental("second", "aqua"))
        testkit.wait_for(
            lambda: cluster.phase("rentals", "second") == "PaymentDeferred",
            timeout=60,
            what="second deferred",
        )
        gateway.set_faults(outage="off")
        testkit.wait_for(
            lambda: cluster.phase("rentals", "second") == "Confirmed", timeout=60, what="second paid"
        )
        assert len(gateway.ledger()["payments"]) == 2
    finally:
        gateway.stop()
    operator.stop()

    log = operator.log_path.read_text(errors="replace")
    assert "DEBUG" in log and "payments POST v1/payments: 201" in log  # verbose: partner calls are logged
    assert "payments POST v1/payments: 503" in log  # the outage was seen and logged
    assert KEY not in log
    events = cluster.core.list_namespaced_event(cluster.namespace).items
    assert any("503" in (event.message or "") for event in events)  # the partner's error reached an Event
    assert not [event.message for event in events if KEY in (event.message or "")]
    payment = cluster.get("payments", rentals.payment_name("second", 1))
    assert payment is not None and KEY not in str(payment)


def test_an_unreadable_key_file_stops_start_up_with_one_line(tmp_path: Path) -> None:
    command = [str(Path(sys.executable).parent / "rental-operator"), "run"]
    environment = {
        "PATH": "/usr/bin:/bin",
        "RENTAL_PAYMENT_URL": "http://127.0.0.1:9/",
        "RENTAL_SHIPPING_URL": "http://127.0.0.1:9/",
        "RENTAL_PAYMENT_API_KEY_FILE": str(tmp_path / "missing"),
    }
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr == (
        f"configuration error: RENTAL_PAYMENT_API_KEY_FILE: cannot read {tmp_path / 'missing'}: "
        "No such file or directory\n"
    )
