"""The README's main command tells its story: `rental_devenv.demo` against the local control plane.

`scripts/demo` is setup, `rental-controlplane up`, the CRDs, then this module's `main`; here `main`
runs in a namespace of the test session's control plane, with the operator and the gateway as
processes, and the outcome is read back from the cluster: one rental withdrawn (every charge
refunded), one ended early with its fee after the second month, one still in force with two months
paid. `tests/node/test_demo_in_cluster.py` runs the `--in-cluster` variant on a node.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rental_devenv import demo, testkit

pytestmark = pytest.mark.cluster


def check_story(cluster: testkit.Cluster, printed: str) -> None:
    """What the demo's story must leave behind, whichever way the operator ran."""
    rentals = {r["metadata"]["name"]: r for r in cluster.items("rentals")}
    withdrawn, terminated, kept = (
        rentals["kim-minjun-aquapure-300"],
        rentals["lee-seoyeon-aquapure-500"],
        rentals["park-jiho-clearspring-mini"],
    )
    assert withdrawn["status"]["phase"] == "Cancelled"
    assert withdrawn["status"]["billing"]["ending"] == "Withdrawal"
    assert withdrawn["status"]["payment"]["phase"] == "Refunded"
    assert terminated["status"]["phase"] == "Cancelled"
    assert terminated["status"]["billing"]["ending"] == "Termination"
    assert terminated["status"]["billing"]["periodsPaid"] >= 2
    assert terminated["status"]["billing"]["feeAmount"] > 0
    assert kept["status"]["phase"] == "Confirmed"
    assert kept["status"]["billing"]["periodsPaid"] >= 2
    assert kept["status"]["delivery"]["phase"] == "Delivered"
    # The summary table, read from the cluster and the gateway's ledger, names each outcome.
    assert "Withdrawal" in printed and "1 refunded" in printed, printed
    assert f"Termination, fee {terminated['status']['billing']['feeAmount']:,}" in printed, printed
    assert "gateway ledger:" in printed, printed


def test_the_demo_story_runs_with_the_operator_as_a_process(
    kubeconfig: Path, namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = demo.main(["--kubeconfig", str(kubeconfig), "--namespace", namespace, "--logs", str(tmp_path)])
    printed = capsys.readouterr().out
    assert code == 0, printed + (tmp_path / "operator.log").read_text(errors="replace")[-4000:]
    check_story(testkit.Cluster(kubeconfig, namespace), printed)
