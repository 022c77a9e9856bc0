"""The demo the README's main command runs: the whole rental story on the local control plane.

Starts the reference partner gateway and the operator as processes (or, with `--in-cluster`, installs
the Helm chart on the development node, running the image built here, with the gateway on the node's
address and MyPage shown through its Service at the end), applies the sample purifiers and
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
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rental_devenv import build, helm, node, testkit

__all__ = ["main"]

# The demo's calendar: a month of the contract lasts 15 seconds, and a customer may withdraw for 8
# seconds after delivery (RENTAL_BILLING_PERIOD, RENTAL_WITHDRAWAL_PERIOD).
MONTH = "15s"
WITHDRAWAL = "8s"

REPO = Path(__file__).resolve().parents[2]

# `--in-cluster`: the chart's release, and whose MyPage is shown at the end (a sample customer).
RELEASE = "rental"
RELEASE_NAMESPACE = "rental-system"
OPERATOR_PODS = "app.kubernetes.io/component=operator"
MYPAGE_PODS = "app.kubernetes.io/component=mypage"
MYPAGE_CUSTOMER = "cust-1003"


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


def _periods_paid(cluster: testkit.Cluster, name: str) -> int:
    rental = cluster.get("rentals", name) or {}
    return int(rental.get("status", {}).get("billing", {}).get("periodsPaid", 0))


def _story(cluster: testkit.Cluster, ledger: Callable[[], dict[str, list[dict[str, Any]]]]) -> int:
    """Apply the samples and take them through the contract; print the summary. 0 when it all ran."""
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
        lambda: cluster.phase("rentals", withdrawn) == "Cancelled", timeout=60, what=f"{withdrawn} Cancelled"
    )
    _say(f"a month here lasts {MONTH}: waiting for the second month to be billed")
    testkit.wait_for(
        lambda: all(
            (cluster.get("rentals", name) or {}).get("status", {}).get("billing", {}).get("periodsPaid", 0)
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
    print(_summary(cluster, ledger()))
    return 0


def _with_processes(kubeconfig: Path, cluster: testkit.Cluster, logs: Path) -> int:
    """The operator as a process on this machine, beside the gateway."""
    from rental_gateway import testing  # noqa: PLC0415

    with testing.GatewayProcess(
        "--auto-deliver-seconds", "3", db=logs / "ledger.sqlite3", log_path=logs / "gateway.log"
    ) as gateway:
        _say(f"partner gateway (payments, shipping, SMS) at {gateway.url}; log {logs / 'gateway.log'}")
        operator = testkit.OperatorProcess(
            kubeconfig,
            env={
                "RENTAL_PAYMENT_URL": gateway.url,
                "RENTAL_SHIPPING_URL": gateway.url,
                "RENTAL_SMS_URL": gateway.url,
                "RENTAL_NAMESPACES": cluster.namespace,
                "RENTAL_SHIPPING_POLL_SECONDS": "1",
                "RENTAL_BILLING_PERIOD": MONTH,
                "RENTAL_WITHDRAWAL_PERIOD": WITHDRAWAL,
            },
            log_path=logs / "operator.log",
        )
        operator.start()
        _say(f"operator running; log {operator.log_path}")
        try:
            return _story(cluster, gateway.ledger)
        finally:
            operator.stop()


def _in_cluster(kubeconfig: Path, cluster: testkit.Cluster, logs: Path, image_name: str) -> int:
    """The chart installed with helm on the development node, running the image built here."""
    from rental_gateway import testing  # noqa: PLC0415

    def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_kubectl(), f"--kubeconfig={kubeconfig}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    binary = helm.ensure_helm()
    repository, tag = image_name.rsplit(":", 1)
    # Bound to the node's private address: the pods reach the gateway there, nothing off this machine.
    with testing.GatewayProcess(
        "--host",
        node.ADDRESS,
        "--auto-deliver-seconds",
        "3",
        db=logs / "ledger.sqlite3",
        log_path=logs / "gateway.log",
    ) as gateway:
        _say(f"partner gateway (payments, shipping, SMS) at {gateway.url}; log {logs / 'gateway.log'}")
        values = {
            "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
            "partners": {
                "payment": {"url": gateway.url},
                "shipping": {"url": gateway.url, "pollSeconds": 1},
                "sms": {"url": gateway.url},
            },
            "billing": {"period": MONTH, "withdrawalPeriod": WITHDRAWAL},
        }
        values_file = logs / "values.yaml"
        values_file.write_text(yaml.safe_dump(values))
        _say(f"helm install {RELEASE} {helm.CHART.relative_to(REPO)} -n {RELEASE_NAMESPACE} -f {values_file}")
        helm.run(
            binary,
            "upgrade",
            "--install",
            RELEASE,
            str(helm.CHART),
            "--namespace",
            RELEASE_NAMESPACE,
            "--create-namespace",
            "--values",
            str(values_file),
            kubeconfig=kubeconfig,
        )
        _wait_ready(kubectl)
        try:
            code = _story(cluster, gateway.ledger)
            if code == 0:
                _show_mypage(kubectl)
            return code
        finally:
            # The gateway stops with the demo, and months here last seconds: left running, the operator
            # would dun every contract into non-payment within a minute. MyPage keeps serving.
            kubectl("scale", "deployment", "-n", RELEASE_NAMESPACE, "-l", OPERATOR_PODS, "--replicas=0")
            _say(
                "the operator is scaled to 0 now that the gateway has stopped (MyPage keeps serving);"
                f" pod logs: kubectl logs -n {RELEASE_NAMESPACE} -l {OPERATOR_PODS}"
            )


def _wait_ready(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """Wait (at most 4 minutes) for every pod of the release to be Ready, printing progress."""
    deadline = time.monotonic() + 240
    last = ""
    while True:
        pods = json.loads(kubectl("get", "pods", "-n", RELEASE_NAMESPACE, "-o", "json").stdout)["items"]
        states = []
        for pod in pods:
            conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
            ready = conditions.get("Ready") == "True"
            states.append(f"{pod['metadata']['name']} {'Ready' if ready else pod['status'].get('phase')}")
        line = ", ".join(sorted(states))
        if line != last:
            _say(f"pods: {line or 'none yet'}")
            last = line
        if pods and all("Ready" in state.split()[-1] for state in states):
            return
        if time.monotonic() > deadline:
            described = kubectl("describe", "pods", "-n", RELEASE_NAMESPACE, check=False).stdout
            raise SystemExit(
                f"[demo] the release's pods did not become Ready in 4 minutes:\n{described[-4000:]}"
            )
        time.sleep(1)


def _show_mypage(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """A customer's MyPage, fetched from this machine through the Service's ClusterIP."""
    services = json.loads(
        kubectl("get", "service", "-n", RELEASE_NAMESPACE, "-l", MYPAGE_PODS, "-o", "json").stdout
    )["items"]
    service = next(s for s in services if any(p["name"] == "http" for p in s["spec"]["ports"]))
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "http")
    base = f"http://{service['spec']['clusterIP']}:{port}"
    # The signing key lives in the pods; the link is minted where it is.
    link = kubectl(
        "exec",
        "-n",
        RELEASE_NAMESPACE,
        f"deployment/{service['metadata']['name']}",
        "--",
        "/opt/venv/bin/rental-operator",
        "mypage-link",
        "--customer",
        MYPAGE_CUSTOMER,
        "--base-url",
        base,
        "--ttl-seconds",
        "3600",
    ).stdout.strip()
    with urllib.request.urlopen(link, timeout=10) as answer:
        page = answer.read().decode()
    _say(f"MyPage answers through its Service {base}: {answer.status}, {len(page):,} bytes")
    _say(f"{MYPAGE_CUSTOMER}'s link (valid for an hour, from this machine): {link}")


def _kubectl() -> str:
    return str(Path(sys.executable).parent / "kubectl")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rental-demo")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--namespace", default="demo")
    parser.add_argument("--logs", type=Path, default=build.cache_root() / "demo")
    parser.add_argument(
        "--in-cluster",
        metavar="IMAGE",
        default="",
        help="install the chart with helm on the development node, running IMAGE (imported there)",
    )
    args = parser.parse_args(argv)
    args.logs.mkdir(parents=True, exist_ok=True)

    subprocess.run(
        [_kubectl(), f"--kubeconfig={args.kubeconfig}", "create", "namespace", args.namespace],
        capture_output=True,
        check=False,
    )
    cluster = testkit.Cluster(args.kubeconfig, args.namespace)
    (args.logs / "ledger.sqlite3").unlink(missing_ok=True)  # a fresh ledger for a fresh story
    if args.in_cluster:
        code = _in_cluster(args.kubeconfig, cluster, args.logs, args.in_cluster)
    else:
        code = _with_processes(args.kubeconfig, cluster, args.logs)
    if code == 0:
        print(f"\nexplore: export KUBECONFIG={args.kubeconfig}; kubectl describe rental -n {args.namespace}")
    return code


if __name__ == "__main__":
    sys.exit(main())
