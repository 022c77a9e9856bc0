"""The demo the README's main command runs: the whole rental story on the local control plane.

Starts the reference partner gateway and the operator as processes, applies the sample purifiers and
rentals into the `demo` namespace, waits for every rental to be paid, confirmed and delivered,
cancels one within the withdrawal period (every charge refunded, return, unit back in stock), waits
for the second month to be billed, cancels another after the withdrawal period (billing stops, the
early-termination fee is charged once), and prints a summary read back from the cluster and from the
gateway's ledger. A month lasts `MONTH` here (RENTAL_BILLING_PERIOD), so the contract shows in
seconds. The control plane stays up afterwards for exploring with kubectl.
Called by `scripts/demo`.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from rental_devenv import build, testkit

__all__ = ["main"]

# The demo's calendar: a month of the contract lasts 15 seconds, and a customer may withdraw for 8
# seconds after delivery (RENTAL_BILLING_PERIOD, RENTAL_WITHDRAWAL_PERIOD).
MONTH = "15s"
WITHDRAWAL = "8s"

REPO = Path(__file__).resolve().parents[2]


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def _apply_samples(cluster: testkit.Cluster) -> list[str]:
    rentals = []
    for path in ("samples/purifiers.yaml", "samples/rentals.yaml"):
        for document in yaml.safe_load_all((REPO / path).read_text()):
            if not document:
                continue
            plural = {"Purifier": "purifiers", "Rental": "rentals"}[document["kind"]]
            if cluster.get(plural, document["metadata"]["name"]) is None:
                cluster.create(document)
            if document["kind"] == "Rental":
                rentals.append(document["metadata"]["name"])
    return rentals


def _phases(status: dict[str, Any]) -> str:
    return f"{status.get('phase')}/{status.get('delivery', {}).get('phase')}"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows
    )


def _charges(records: list[dict[str, Any]]) -> str:
    """A rental's charges in the ledger, by status: `1 approved`, `2 refunded, 1 declined`."""
    counted = collections.Counter(str(record["status"]) for record in records)
    return ", ".join(f"{count} {status}" for status, count in sorted(counted.items())) or "none"


def _ending(billing: dict[str, Any]) -> str:
    """How a contract ended early, and its fee: `Termination, fee 152,660`, `Withdrawal`, or `-`."""
    ending = billing.get("ending")
    if not ending:
        return "-"
    fee = billing.get("feeAmount")
    return f"{ending}, fee {fee:,}" if fee else str(ending)


def _summary(cluster: testkit.Cluster, ledger: dict[str, list[dict[str, Any]]]) -> str:
    # Rentals are monthly contracts: PAYMENT and AMOUNT are the latest charge (a month's fee, or the
    # early-termination fee), PAID the months paid of the term, ENDING how it ended early, CHARGES
    # every charge the payment system has for the rental.
    rows = [
        ["RENTAL", "PHASE", "PAYMENT", "AMOUNT", "PAID", "ENDING", "CHARGES", "DELIVERY", "TRACKING", "TEXTS"]
    ]
    texts = collections.Counter(m["reference"].split("/")[1] for m in ledger["messages"])
    charged: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for record in ledger["payments"]:
        charged[record["reference"].split("/")[1]].append(record)
    for rental in cluster.items("rentals"):
        name = rental["metadata"]["name"]
        status = rental.get("status", {})
        payment, delivery = status.get("payment", {}), status.get("delivery", {})
        billing = status.get("billing", {})
        term = billing.get("periodsTotal", rental["spec"].get("months"))
        rows.append(
            [
                name,
                str(status.get("phase")),
                str(payment.get("phase")),
                f"{payment.get('amount', 0):,} {payment.get('currency', '')}",
                f"{billing.get('periodsPaid', 0)}/{term}",
                _ending(billing),
                _charges(charged[name]),
                str(delivery.get("phase")),
                str(delivery.get("trackingNumber")),
                str(texts[name]),
            ]
        )
    stock = [["PURIFIER", "STOCK", "ALLOCATED", "AVAILABLE", "TRANSFERRED"]]
    for purifier in cluster.items("purifiers"):
        status = purifier.get("status", {})
        stock.append(
            [
                purifier["metadata"]["name"],
                str(purifier["spec"]["stock"]),
                str(status.get("allocated")),
                str(status.get("available")),
                str(status.get("transferred", 0)),
            ]
        )
    charges = collections.Counter(p["status"] for p in ledger["payments"])
    gateway = (
        f"gateway ledger: {sum(charges.values())} charges ({dict(charges)}), "
        f"{len(ledger['shipments'])} shipments, {len(ledger['messages'])} text messages"
    )
    return f"{_table(rows)}\n\n{_table(stock)}\n\n{gateway}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rental-demo")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--namespace", default="demo")
    parser.add_argument("--logs", type=Path, default=build.cache_root() / "demo")
    args = parser.parse_args(argv)
    args.logs.mkdir(parents=True, exist_ok=True)

    # Imported here so `rental-demo --help` works before the operator is installed.
    from rental_gateway import testing  # noqa: PLC0415

    kubectl = str(Path(sys.executable).parent / "kubectl")
    subprocess.run(
        [kubectl, f"--kubeconfig={args.kubeconfig}", "create", "namespace", args.namespace],
        capture_output=True,
        check=False,
    )
    cluster = testkit.Cluster(args.kubeconfig, args.namespace)
    (args.logs / "ledger.sqlite3").unlink(missing_ok=True)  # a fresh ledger for a fresh story
    with testing.GatewayProcess(
        "--auto-deliver-seconds", "3", db=args.logs / "ledger.sqlite3", log_path=args.logs / "gateway.log"
    ) as gateway:
        _say(f"partner gateway (payments, shipping, SMS) at {gateway.url}; log {args.logs / 'gateway.log'}")
        operator = testkit.OperatorProcess(
            args.kubeconfig,
            env={
                "RENTAL_PAYMENT_URL": gateway.url,
                "RENTAL_SHIPPING_URL": gateway.url,
                "RENTAL_SMS_URL": gateway.url,
                "RENTAL_NAMESPACES": args.namespace,
                "RENTAL_SHIPPING_POLL_SECONDS": "1",
                "RENTAL_BILLING_PERIOD": MONTH,
                "RENTAL_WITHDRAWAL_PERIOD": WITHDRAWAL,
            },
            log_path=args.logs / "operator.log",
        )
        operator.start()
        _say(f"operator running; log {operator.log_path}")
        try:
            started = time.monotonic()
            names = _apply_samples(cluster)
            _say(f"applied {len(names)} sample rentals: {', '.join(names)}")
            last = ""
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                rentals = {r["metadata"]["name"]: r.get("status", {}) for r in cluster.items("rentals")}
                line = ", ".join(f"{n}={_phases(rentals.get(n, {}))}" for n in names)
                if line != last:
                    _say(f"{time.monotonic() - started:5.1f}s  {line}")
                    last = line
                if all(
                    rentals.get(n, {}).get("delivery", {}).get("phase") == "Delivered"
                    or rentals.get(n, {}).get("phase") in ("Cancelled", "Rejected")
                    for n in names
                ):
                    break
                time.sleep(0.5)
            else:
                _say("rentals did not all arrive within 2 minutes; see the operator log")
                return 1

            withdrawn, terminated = names[0], names[1]
            _say(f"the customer of {withdrawn} cancels within the withdrawal period: every charge refunded")
            cluster.patch("rentals", withdrawn, {"spec": {"cancelled": True}})
            testkit.wait_for(
                lambda: cluster.phase("rentals", withdrawn) == "Cancelled",
                timeout=60,
                what=f"{withdrawn} Cancelled",
            )
            _say(f"a month here lasts {MONTH}: waiting for the second month to be billed")
            testkit.wait_for(
                lambda: all(
                    (cluster.get("rentals", name) or {})
                    .get("status", {})
                    .get("billing", {})
                    .get("periodsPaid", 0)
                    >= 2
                    for name in names
                    if name != withdrawn
                ),
                timeout=60,
                what="month 2 billed",
            )
            _say(f"the customer of {terminated} ends the contract early: billing stops, the fee is charged")
            cluster.patch("rentals", terminated, {"spec": {"cancelled": True}})
            testkit.wait_for(
                lambda: cluster.phase("rentals", terminated) == "Cancelled",
                timeout=60,
                what=f"{terminated} Cancelled",
            )
            time.sleep(1)
            _say(f"done in {time.monotonic() - started:.1f}s\n")
            print(_summary(cluster, gateway.ledger()))
            print(
                f"\nexplore: export KUBECONFIG={args.kubeconfig}; kubectl describe rental -n {args.namespace}"
            )
        finally:
            operator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
