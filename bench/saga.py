"""Benchmark of the rental saga against the API server's own capacity.

Starts a fresh control plane, the reference gateway (no added latency) and the operator, then for each
scenario applies N rentals (all at once, or at a steady rate) and reports:
  - latency from apply to Confirmed and to Delivery Shipping (p50, p95, p99), from a watch;
  - throughput (rentals confirmed per second; for a burst this is the saturation throughput);
  - API writes per rental by verb and resource, from kube-apiserver's own apiserver_request_total
    before and after (Events counted separately), until every rental is delivered and at rest;
  - operator CPU seconds per rental and peak RSS, and optionally RSS with many rentals present;
  - the raw capacity of the same API server: a minimal client doing exactly the writes one rental
    needs, as fast as it can with bounded concurrency. Figure of merit:
    throughput / (raw writes per second / writes per rental).
Figures are printed (and written as JSON with --json); nothing here asserts a time.

    .venv/bin/python bench/saga.py --burst 500 2000 --steady 500 --rate 40
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import kubernetes

from rental_devenv import controlplane, testkit
from rental_gateway import testing
from rental_operator import kubeapi
from rental_operator.api import delivery, payment, purifier, rental
from rental_operator.reconcilers import rentals

REPO = Path(__file__).resolve().parent.parent
GROUP, VERSION = "rental.purifier.io", "v1alpha1"
WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "APPLY"}
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# --- measurements of processes and the API server ----------------------------------------------------
def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def memory_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return rss / 1024, peak / 1024


def restarted_rss(operator: testkit.OperatorProcess, *, timeout: float = 600) -> dict[str, Any]:
    """Restart the operator and read its RSS once it has listed everything and gone quiet.

    A burst's peak includes queues that drain; what an operator costs with the objects simply present
    is what it holds after starting with them: every Rental, Payment and Delivery listed and stored.
    Quiet: the rentals gauge covers every rental in the cluster and CPU use has stopped growing.
    """
    operator.stop()
    started = time.monotonic()
    operator.start()
    total = 0.0
    while time.monotonic() - started < timeout:
        try:
            page = operator.metrics()
        except OSError:  # not serving yet
            time.sleep(1)
            continue
        total = sum(
            float(line.rsplit(" ", 1)[1]) for line in page.splitlines() if line.startswith("rental_rentals{")
        )
        cpu = cpu_seconds(operator.pid)
        time.sleep(5)
        if total > 0 and cpu_seconds(operator.pid) - cpu < 0.25:  # under 5% of a core: idle
            break
    rss, peak = memory_mb(operator.pid)
    log(f"restarted with {total:.0f} rentals present: RSS {rss:.1f} MiB (peak {peak:.1f})")
    return {
        "rentals_listed": int(total),
        "seconds_to_quiet": round(time.monotonic() - started, 1),
        "operator_rss_mb": round(rss, 1),
        "operator_peak_rss_mb": round(peak, 1),
    }


def request_counts(plane: controlplane.ControlPlane) -> collections.Counter[tuple[str, str, str]]:
    """apiserver_request_total summed by (verb, group, resource[/subresource])."""
    code, body = plane.get("/metrics")
    if code != 200:
        raise RuntimeError(f"kube-apiserver /metrics answered {code}")
    counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for line in body.decode().splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
        value = float(line.rsplit(" ", 1)[1])
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        counts[labels.get("verb", ""), labels.get("group", ""), resource] += value
    return counts


def writes_between(
    before: collections.Counter[tuple[str, str, str]], after: collections.Counter[tuple[str, str, str]]
) -> tuple[dict[str, float], float]:
    """Writes to our group by 'VERB resource', and Event writes, between two snapshots."""
    ours: dict[str, float] = {}
    events = 0.0
    for (verb, group, resource), delta in (after - before).items():  # only the counts that grew
        if verb not in WRITE_VERBS:
            continue
        if resource == "events":
            events += delta
        elif group == GROUP:
            ours[f"{verb} {resource}"] = delta
    return ours, events


def reads_between(
    before: collections.Counter[tuple[str, str, str]], after: collections.Counter[tuple[str, str, str]]
) -> dict[str, float]:
    """Reads of our group by 'VERB resource' (GET, LIST, WATCH): the API server's work beyond writes."""
    return {
        f"{verb} {resource}": delta
        for (verb, group, resource), delta in (after - before).items()
        if group == GROUP and verb not in WRITE_VERBS
    }


# --- the scenario ---------------------------------------------------------------------------------
class Watcher:
    """Records when each rental first shows Confirmed and its delivery first shows Shipping.

    It watches through the operator's own lean reader (`kubeapi.Kube.watch`, orjson, no model
    classes): the watcher shares the machine with what it measures, and `kubernetes.watch` spent
    about a fifth of a core on parsing during a burst, CPU the API server then did not have.
    """

    def __init__(self, client: Any, namespace: str) -> None:
        self.kube = kubeapi.Kube(client)
        self.namespace = namespace
        self.confirmed: dict[str, float] = {}
        self.shipping: dict[str, float] = {}
        self.resting: set[str] = set()
        # Every status the first rental had, in order: the raw client replays them (see raw_capacity).
        self.traced = "r00000"
        self.trace: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._stream: kubeapi.WatchStream | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._stream is not None:
            self._stream.close()

    def _see(self, obj: dict[str, Any], now: float) -> None:
        name, status = obj["metadata"]["name"], obj.get("status") or {}
        if name == self.traced and status and (not self.trace or self.trace[-1] != status):
            self.trace.append(status)
        if status.get("phase") == "Confirmed":
            self.confirmed.setdefault(name, now)
        if (status.get("delivery") or {}).get("phase") == "Shipping":
            self.shipping.setdefault(name, now)
        history = status.get("history") or []
        last = history[-1]["seq"] if history else 0
        delivered = (status.get("delivery") or {}).get("phase") == "Delivered"
        if status.get("phase") == "Confirmed" and delivered and status.get("notifiedSeq") == last:
            self.resting.add(name)

    def _run(self) -> None:
        # Resume from the last resourceVersion seen: a watch restarted without it lists every rental
        # again, which at 10,000 rentals took longer than the watch's own timeout and left the
        # figures minutes behind the cluster.
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    for items, listed in self.kube.list_pages(rental.RESOURCE, self.namespace):
                        version = listed
                        now = time.monotonic()
                        for obj in items:
                            self._see(obj, now)
                self._stream = self.kube.watch(rental.RESOURCE, self.namespace, version, timeout_seconds=60)
                for event in self._stream:
                    now = time.monotonic()
                    obj = event["object"]
                    version = obj["metadata"].get("resourceVersion") or version
                    if event["type"] != "BOOKMARK":
                        self._see(obj, now)
                    if self._stop.is_set():
                        return
            except kubeapi.Gone:
                version = None  # too old: list again
                log("watch restarted: 410 Gone")
            except Exception as error:  # a dropped watch is resumed
                if not self._stop.is_set():
                    log(f"watch restarted: {error}")


def rental_body(name: str, purifier: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Rental",
        "metadata": {"name": name},
        "spec": {
            "purifier": purifier,
            "months": 12,
            "customer": {"id": f"c-{name}", "name": "Bench", "phone": "+821012345678", "address": "Seoul"},
        },
    }


def run_scenario(
    plane: controlplane.ControlPlane,
    client: Any,
    operator: testkit.OperatorProcess,
    *,
    n: int,
    rate: float | None,
) -> dict[str, Any]:
    kind = f"steady {rate:g}/s" if rate else "burst"
    namespace = f"bench-{'steady' if rate else 'burst'}-{n}-{int(time.time())}"
    core = kubernetes.client.CoreV1Api(client)
    custom = kubernetes.client.CustomObjectsApi(client)
    core.create_namespace({"metadata": {"name": namespace}})
    catalog = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Purifier",
        "metadata": {"name": "aqua"},
        "spec": {"model": "AquaPure", "monthlyFee": 29900, "stock": n},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "purifiers", catalog)
    time.sleep(1.0)  # let the operator see the purifier before the rentals arrive
    watcher = Watcher(client, namespace)
    watcher.start()
    time.sleep(0.5)
    before, cpu_before = request_counts(plane), cpu_seconds(operator.pid)
    applied: dict[str, float] = {}
    started = time.monotonic()

    def apply(index: int) -> None:
        name = f"r{index:05d}"
        if rate:
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "rentals", rental_body(name, "aqua")
        )
        applied[name] = time.monotonic()

    log(f"{kind}: applying {n} rentals into {namespace}")
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(apply, range(n)))
    applied_by = time.monotonic() - started
    deadline = time.monotonic() + max(300, n * 0.5)
    last_report = 0.0
    while len(watcher.resting) < n and time.monotonic() < deadline:
        if time.monotonic() - last_report > 10:
            last_report = time.monotonic()
            log(f"{kind}: {len(watcher.confirmed)}/{n} confirmed, {len(watcher.resting)}/{n} at rest")
        time.sleep(0.2)
    time.sleep(1.5)  # let trailing writes (notification marks) land before the snapshot
    after, cpu_after = request_counts(plane), cpu_seconds(operator.pid)
    watcher.stop()
    if len(watcher.resting) < n:
        log(f"{kind}: only {len(watcher.resting)}/{n} at rest before the deadline")

    to_confirmed = [watcher.confirmed[r] - applied[r] for r in applied if r in watcher.confirmed]
    to_shipping = [watcher.shipping[r] - applied[r] for r in applied if r in watcher.shipping]
    last_confirmed = max(watcher.confirmed.values(), default=started)
    writes, events = writes_between(before, after)
    total = sum(writes.values())
    rss, peak = memory_mb(operator.pid)
    kube = kubeapi.Kube(client)
    # The traced rental's charge at application is its period-1 Payment (`<rental>-p1`).
    owned = {
        plural: kube.get(resource, namespace, name)
        for plural, resource, name in (
            ("payments", payment.RESOURCE, rentals.payment_name(watcher.traced, 1)),
            ("deliveries", delivery.RESOURCE, watcher.traced),
            ("purifiers", purifier.RESOURCE, "aqua"),
        )
    }
    samples = {
        "specs": {plural: obj["spec"] for plural, obj in owned.items()},
        "statuses": {"rentals": watcher.trace, **{p: [o.get("status") or {}] for p, o in owned.items()}},
    }
    return {
        "samples": samples,
        "scenario": kind,
        "rentals": n,
        "confirmed": len(watcher.confirmed),
        "applied_in_seconds": round(applied_by, 2),
        "confirmed_per_second": round(len(watcher.confirmed) / max(last_confirmed - started, 1e-9), 1),
        "to_confirmed_ms": {q: round(percentile(to_confirmed, q) * 1000, 1) for q in (50, 95, 99)},
        "to_shipping_ms": {q: round(percentile(to_shipping, q) * 1000, 1) for q in (50, 95, 99)},
        "writes_per_rental": round(total / n, 2),
        "writes_by_kind": {k: round(v / n, 2) for k, v in sorted(writes.items())},
        "event_writes_per_rental": round(events / n, 2),
        "reads_by_kind": {k: round(v / n, 2) for k, v in sorted(reads_between(before, after).items())},
        "operator_cpu_seconds_per_rental": round((cpu_after - cpu_before) / n, 4),
        "operator_rss_mb": round(rss, 1),
        "operator_peak_rss_mb": round(peak, 1),
    }


# --- the API server's raw capacity --------------------------------------------------------------------
def raw_capacity(
    client: Any, mix: dict[str, float], samples: dict[str, Any], *, rentals: int, concurrency: int
) -> dict[str, Any]:
    """Do exactly the writes of `mix` (per rental, by 'VERB resource') for `rentals` synthetic rentals.

    Through the operator's own request path (`kubeapi.Kube`: the same transport, the same request
    shapes), so the bound measures the API server, not a heavier client than the operator uses. The
    bodies are the saga's own (`samples` from the measured scenario): a rental's status writes replay
    the statuses one rental had, in order, and the other kinds write their final status, each with
    observedGeneration counting up so that every write changes the object. A status of a few bytes
    would cost the API server far less to decode, validate, track and store than the real one.
    """
    kube = kubeapi.Kube(client)
    core = kubernetes.client.CoreV1Api(client)
    namespace = f"bench-raw-{int(time.time())}"
    core.create_namespace({"metadata": {"name": namespace}})
    plan: list[tuple[str, str]] = []
    for key, per_rental in mix.items():
        verb, resource = key.split(" ", 1)
        plan.extend([(verb, resource)] * round(per_rental))
    # Creates first (the objects must exist), then the rest, as in the saga.
    plan.sort(key=lambda item: item[0] != "POST")
    resources = {
        "rentals": rental.RESOURCE,
        "payments": payment.RESOURCE,
        "deliveries": delivery.RESOURCE,
        "purifiers": purifier.RESOURCE,
    }
    specs: dict[str, Any] = {"rentals": rental_body("x", "aqua")["spec"], **samples["specs"]}
    statuses: dict[str, list[dict[str, Any]]] = samples["statuses"]

    def one(index: int) -> int:
        name = f"raw{index:05d}"
        objects: dict[str, dict[str, Any]] = {}
        written: collections.Counter[str] = collections.Counter()
        done = 0
        for verb, resource in plan:
            plural, _, sub = resource.partition("/")
            kind = resources[plural]
            if plural not in objects:
                body = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": {"name": name}}
                body["spec"] = specs[plural]
                objects[plural] = kube.create(kind, namespace, body)
                done += 1
                if verb == "POST" and not sub:
                    continue
            obj = objects[plural]
            if sub == "status":
                sequence = statuses.get(plural) or [{}]
                status = {**sequence[min(written[plural], len(sequence) - 1)], "observedGeneration": done}
                written[plural] += 1
                objects[plural] = kube.replace_status(kind, obj, status)
            else:
                objects[plural] = kube.merge_patch(kind, obj, {"metadata": {"labels": {"n": str(done)}}})
            done += 1
        return done

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        writes = sum(pool.map(one, range(rentals)))
    seconds = time.monotonic() - started
    return {
        "rentals": rentals,
        "concurrency": concurrency,
        "writes": writes,
        "writes_per_rental": round(writes / rentals, 2),
        "writes_per_second": round(writes / seconds, 1),
    }


def machine() -> str:
    model = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    return f"{os.cpu_count()} CPUs ({model.group(1) if model else platform.processor()}), {platform.system()}"


def _report(results: dict[str, Any]) -> None:
    print(f"\nmachine: {results['machine']}")
    header = (
        "scenario",
        "N",
        "conf/s",
        "p50 conf",
        "p95",
        "p99",
        "p50 ship",
        "p99 ship",
        "writes",
        "events",
        "cpu s/rental",
        "peak MB",
        "merit",
    )
    print("  ".join(f"{h:>12}" for h in header))
    for s in results["scenarios"]:
        row = (
            s["scenario"],
            s["rentals"],
            s["confirmed_per_second"],
            s["to_confirmed_ms"][50],
            s["to_confirmed_ms"][95],
            s["to_confirmed_ms"][99],
            s["to_shipping_ms"][50],
            s["to_shipping_ms"][99],
            s["writes_per_rental"],
            s["event_writes_per_rental"],
            s["operator_cpu_seconds_per_rental"],
            s["operator_peak_rss_mb"],
            s.get("figure_of_merit"),
        )
        print("  ".join(f"{v!s:>12}" for v in row))
    if results["scenarios"]:
        print("writes per rental by kind:", json.dumps(results["scenarios"][0]["writes_by_kind"]))
        print("reads per rental by kind:", json.dumps(results["scenarios"][0]["reads_by_kind"]))
    if "raw" in results:
        print("raw capacity:", json.dumps(results["raw"]))
    if "present" in results:
        present = results["present"]
        print(
            f"RSS with {present['rentals']} rentals present: {present['operator_rss_mb']} MB at the end "
            f"of the burst (peak {present['operator_peak_rss_mb']} MB); after a restart with them all "
            f"listed: {present['after_restart']['operator_rss_mb']} MB "
            f"(peak {present['after_restart']['operator_peak_rss_mb']} MB)"
        )


def _install_crds(plane: controlplane.ControlPlane) -> None:
    kubectl = str(Path(sys.executable).parent / "kubectl")
    subprocess.run(
        [kubectl, f"--kubeconfig={plane.kubeconfig}", "apply", "-f", str(REPO / "crds")],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            kubectl,
            f"--kubeconfig={plane.kubeconfig}",
            "wait",
            "--for=condition=Established",
            "-f",
            str(REPO / "crds"),
        ],
        check=True,
        capture_output=True,
    )


def _arguments() -> tuple[argparse.Namespace, dict[str, str]]:
    """The command line, and the operator's extra environment from `--operator-env`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--burst", type=int, nargs="*", default=[500, 2000], help="rentals applied all at once"
    )
    parser.add_argument("--steady", type=int, nargs="*", default=[500], help="rentals applied at --rate")
    parser.add_argument("--rate", type=float, default=20.0, help="rentals per second for --steady")
    parser.add_argument("--raw-rentals", type=int, default=500)
    parser.add_argument("--raw-concurrency", type=int, default=16)
    parser.add_argument("--present", type=int, default=0, help="then keep this many rentals and report RSS")
    parser.add_argument(
        "--operator-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the operator, e.g. RENTAL_MYPAGE_ENABLED=false to run it as the"
        " chart does (MyPage in its own Deployment); repeatable",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    extra_env: dict[str, str] = {}
    for item in args.operator_env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--operator-env: expected NAME=VALUE, got {item!r}")
        extra_env[name] = value
    return args, extra_env


def main() -> int:
    args, extra_env = _arguments()

    work = Path(tempfile.mkdtemp(prefix="bench-saga-"))
    plane = controlplane.ControlPlane(directory=work / "controlplane")
    log(f"starting a control plane in {work}")
    plane.start()
    _install_crds(plane)
    client = kubernetes.config.new_client_from_config(config_file=str(plane.kubeconfig))
    client.configuration.connection_pool_maxsize = 32
    results: dict[str, Any] = {"machine": machine(), "operator_env": extra_env, "scenarios": []}
    gateway = testing.GatewayProcess("--quiet", "--auto-deliver-seconds", "1", db=work / "ledger.sqlite3")
    gateway.start()
    operator = testkit.OperatorProcess(
        plane.kubeconfig,
        env={
            "RENTAL_PAYMENT_URL": gateway.url,
            "RENTAL_SHIPPING_URL": gateway.url,
            "RENTAL_SMS_URL": gateway.url,
            "RENTAL_SHIPPING_POLL_SECONDS": "1",
            **extra_env,
        },
        log_path=work / "operator.log",
    )
    operator.start()
    try:
        samples: dict[str, Any] = {}
        for n, rate in [(n, None) for n in args.burst] + [(n, args.rate) for n in args.steady]:
            result = run_scenario(plane, client, operator, n=n, rate=rate)
            samples = samples or result["samples"]  # the first scenario's bodies serve the raw client
            del result["samples"]
            results["scenarios"].append(result)
            log(json.dumps(result))
        if args.present:
            results["present"] = run_scenario(plane, client, operator, n=args.present, rate=None)
            del results["present"]["samples"]
            results["present"]["after_restart"] = restarted_rss(operator)
        # The raw client runs alone: the operator would otherwise react to its objects.
        operator.stop()
        mix = results["scenarios"][0]["writes_by_kind"] if results["scenarios"] else {}
        if mix:
            log(
                f"raw capacity: {args.raw_rentals} synthetic rentals of "
                f"{sum(round(v) for v in mix.values())} writes each"
            )
            raw = raw_capacity(
                client, mix, samples, rentals=args.raw_rentals, concurrency=args.raw_concurrency
            )
            results["raw"] = raw
            for scenario in results["scenarios"]:
                bound = raw["writes_per_second"] / max(scenario["writes_per_rental"], 1e-9)
                scenario["raw_bound_rentals_per_second"] = round(bound, 1)
                scenario["figure_of_merit"] = round(scenario["confirmed_per_second"] / bound, 2)
    finally:
        operator.stop()
        gateway.stop()
        plane.stop()

    _report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
