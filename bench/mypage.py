"""Benchmark of MyPage, the read side: memory of the projection, HTTP latency under load, and lag.

Three parts, figures printed (and written as JSON with --json); nothing here asserts a time.

1. memory: 100,000 synthetic Rentals across 20,000 customers (the shapes and messages the operator
   writes: confirmed and delivered, shipping, awaiting payment, cancelled, rejected; rentals in force
   carry their monthly contract, `status.billing`, and a receipt in the history for each month paid,
   the history cut to its last 20 entries as the operator cuts it; 5% of the delivered ones past due)
   are fed into a projection; tracemalloc gives the bytes it keeps, and a separate process its RSS
   growth.
2. http: a child process loads the same projection and serves the real aiohttp application
   (token authentication on) on 127.0.0.1; `wrk` (Debian's) requests
   GET /api/v1/customers/{random customer}/rentals with each customer's bearer token, and reports
   p50/p99 latency and requests per second.
3. lag (--cluster): on a real control plane (started here, or --kubeconfig), the operator with
   MyPage inside and a `rental-operator mypage` process; the status of rentals at rest is changed
   directly through the API, and the time from sending the change to its appearance in each
   MyPage's JSON is measured (p50/p99 over --changes changes, polled about every millisecond).

    .venv/bin/python bench/mypage.py                  # memory and http
    .venv/bin/python bench/mypage.py --cluster        # and the lag on a fresh control plane
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import gc
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rental_operator.mypage import auth, projection, server

REPO = Path(__file__).resolve().parent.parent
SECRET = b"bench-secret-0123456789abcdef-0123456789"
NAMESPACES = ("seoul", "busan", "incheon", "daegu")
PURIFIERS = [
    (f"purifier-{index:02d}", f"AquaPure {100 + 50 * index}", 20_000 + 3_000 * index) for index in range(20)
]

# (weight, history) per kind of rental; each history entry is (kind, phase, message).
_APPLIED = ("Rental", "Pending", "application received")
_PAYING = ("Rental", "AwaitingPayment", "a unit is reserved; taking payment")
_CONFIRMED = ("Rental", "Confirmed", "paid; delivery started")
_SHIPPING = ("Delivery", "Shipping", "delivery shipping")
_DELIVERED = ("Delivery", "Delivered", "delivery delivered")
_CANCELLING = (
    "Rental",
    "Cancelling",
    "cancelled by the customer: refunding, stopping delivery, releasing the unit",
)
_RETURNING = ("Delivery", "Returning", "delivery returning")
_RETURNED = ("Delivery", "Returned", "delivery returned")
_CANCELLED = ("Rental", "Cancelled", "cancelled by the customer; everything was undone")
STORIES: list[tuple[int, tuple[tuple[str, str, str], ...], str | None, str | None]] = [
    # weight, history, payment phase, delivery phase
    (70, (_APPLIED, _PAYING, _CONFIRMED, _SHIPPING, _DELIVERED), "Approved", "Delivered"),
    (10, (_APPLIED, _PAYING, _CONFIRMED, _SHIPPING), "Approved", "Shipping"),
    (5, (_APPLIED, _PAYING), "Pending", None),
    (
        10,
        (
            _APPLIED,
            _PAYING,
            _CONFIRMED,
            _SHIPPING,
            _DELIVERED,
            _CANCELLING,
            _RETURNING,
            _RETURNED,
            _CANCELLED,
        ),
        "Refunded",
        "Returned",
    ),
    (5, (_APPLIED, ("Rental", "Rejected", "every unit of {purifier} is rented out")), None, None),
]


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    wrk = shutil.which("wrk")
    wrk_version = ""
    if wrk:
        wrk_version = subprocess.run(
            [wrk, "--version"], capture_output=True, text=True, check=False
        ).stdout.split("\n")[0]
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "wrk": wrk_version.split(" Copyright")[0],
        "load_average_1m_at_start": os.getloadavg()[0],
    }


# The operator keeps this many history entries (api.rental.HISTORY_LIMIT); a rental months into its
# term has mostly monthly receipts there, which is what makes an old rental's record larger.
HISTORY_LIMIT = 20
DAY = 86400
MONTH = 30 * DAY  # a synthetic calendar: what matters here is the shape and size of the data


def _stamp(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _parse(stamp: str) -> int:
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))


def _contract(rng: random.Random, status: dict[str, Any], *, fee: int, months: int, cancelled: bool) -> None:
    """Add the monthly contract to a rental that was confirmed: `status.billing` and the receipts.

    A delivered rental has paid a random number of its months (one receipt each after the first,
    which the confirmation stands for), 5% of them with a declined charge being retried; a
    shipping or cancelled one has paid its first month.
    """
    history: list[dict[str, Any]] = status["history"]
    confirmed = next(entry for entry in history if entry["phase"] == "Confirmed")
    anchor = _parse(confirmed["at"])
    delivered = next((entry for entry in history if entry["phase"] == "Delivered"), None)
    at_rest = status["phase"] == "Confirmed" and delivered is not None
    paid = rng.randint(1, months) if at_rest else 1
    seq = history[-1]["seq"]
    for period in range(2, paid + 1):
        seq += 1
        history.append(
            {
                "seq": seq,
                "kind": "Billing",
                "phase": "Charged",
                "at": _stamp(anchor + (period - 1) * MONTH + rng.randrange(60)),
                "message": f"period {period} of {months} paid",
                "period": period,
                "amount": fee,
            }
        )
    billing: dict[str, Any] = {
        "monthlyFee": fee,
        "currency": "KRW",
        "mandatoryMonths": rng.choice((0, 12, 36)),
        "earlyTerminationPercent": 10,
        "periodsTotal": months,
        "periodsPaid": paid,
        "paidAmount": fee * paid,
        "refundedAmount": fee * paid if cancelled else 0,
        "anchor": _stamp(anchor),
        "termEndsAt": _stamp(anchor + months * MONTH),
    }
    if delivered is not None:
        billing["withdrawalEndsAt"] = _stamp(_parse(delivered["at"]) + 14 * DAY)
    if cancelled:
        billing["ending"], billing["endingAt"] = "Withdrawal", history[-1]["at"]
    elif paid < months:
        due = anchor + paid * MONTH
        billing["nextChargeAt"] = _stamp(due)
        if at_rest and rng.random() < 0.05:
            seq += 1
            retry = due + DAY
            history.append(
                {
                    "seq": seq,
                    "kind": "Billing",
                    "phase": "ChargeDeclined",
                    "at": _stamp(due + 5),
                    "message": "insufficient_funds",
                    "period": paid + 1,
                    "amount": fee,
                    "dueAt": _stamp(retry),
                }
            )
            billing["pastDue"] = {
                "period": paid + 1,
                "since": _stamp(due + 5),
                "attempts": 1,
                "nextAttemptAt": _stamp(retry),
            }
            status["phase"], status["message"] = "PastDue", "a monthly charge was declined; retrying"
    status["history"] = history[-HISTORY_LIMIT:]
    status["billing"] = billing


def customer_id(index: int) -> str:
    return f"cust-{index:05d}"


def synthetic_rentals(count: int, customers: int, *, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Rental objects as the API server sends them, with the operator's statuses and messages."""
    rng = random.Random(seed)
    weights = [story[0] for story in STORIES]
    start = 1_767_225_600  # 2026-01-01T00:00:00Z
    for index in range(count):
        customer = customer_id(index % customers)
        purifier, _model, fee = PURIFIERS[rng.randrange(len(PURIFIERS))]
        months = rng.choice((12, 24, 36, 48, 60))
        _weight, story, payment_phase, delivery_phase = rng.choices(STORIES, weights)[0]
        created = start + rng.randrange(300 * 86400)
        history = []
        at = created
        for seq, (kind, phase, message) in enumerate(story, start=1):
            history.append(
                {
                    "seq": seq,
                    "kind": kind,
                    "phase": phase,
                    "at": _stamp(at),
                    "message": message.format(purifier=purifier),
                }
            )
            at += rng.randrange(1, 86400)
        status: dict[str, Any] = {
            "phase": [entry for entry in history if entry["kind"] == "Rental"][-1]["phase"],
            "message": [entry for entry in history if entry["kind"] == "Rental"][-1]["message"],
            "history": history,
            "observedGeneration": 1,
        }
        name = f"{customer}-{purifier}-{index // customers}"
        if payment_phase in ("Approved", "Refunded"):
            _contract(rng, status, fee=fee, months=months, cancelled=payment_phase == "Refunded")
        if payment_phase:
            status["payment"] = {
                "name": name,
                "phase": payment_phase,
                "amount": fee,  # the latest period's charge: one month's fee
                "currency": "KRW",
                "transactionId": f"pay_{rng.getrandbits(64):016x}",
            }
        if delivery_phase:
            status["delivery"] = {
                "name": name,
                "phase": delivery_phase,
                "trackingNumber": f"RX{rng.getrandbits(40):010X}",
            }
        yield {
            "apiVersion": "rental.purifier.io/v1alpha1",
            "kind": "Rental",
            "metadata": {
                "namespace": NAMESPACES[index % len(NAMESPACES)],
                "name": name,
                "uid": f"{rng.getrandbits(128):032x}",
                "resourceVersion": str(1000 + index),
                "generation": 1,
                "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
            },
            "spec": {
                "purifier": purifier,
                "months": months,
                "customer": {"id": customer, "name": "Kim", "phone": "+821012345678", "address": "Seoul"},
            },
            "status": status,
        }


def load(view: projection.Projection, count: int, customers: int) -> None:
    for namespace in NAMESPACES:
        for name, model, fee in PURIFIERS:
            view.apply(
                "Purifier",
                None,
                {
                    "metadata": {"namespace": namespace, "name": name, "resourceVersion": "1"},
                    "spec": {"model": model, "monthlyFee": fee, "currency": "KRW", "stock": 10_000},
                },
            )
    for obj in synthetic_rentals(count, customers):
        view.apply("Rental", None, obj)
    view.mark_ready()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib() -> int:
    match = re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(match.group(1)) if match else 0


# --- 1. memory -----------------------------------------------------------------------------------------
def measure_memory(count: int, customers: int) -> dict[str, Any]:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    view = projection.Projection()
    started = time.perf_counter()
    load(view, count, customers)
    seconds = time.perf_counter() - started
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(view) == count and view.customers == customers, (len(view), view.customers)
    # The serving path without HTTP: one customer's rentals to JSON bytes.
    ids = [customer_id(index) for index in random.Random(3).sample(range(customers), 2000)]
    now = time.time()
    started = time.perf_counter()
    for customer in ids:
        json.dumps([server.rental_json(rental, now=now) for rental in view.rentals_of(customer)]).encode()
    per_query = (time.perf_counter() - started) / len(ids)
    return {
        "rentals": count,
        "customers": customers,
        "tracemalloc_bytes": kept,
        "bytes_per_rental": kept / count,
        "mb_per_100k": kept / count * 100_000 / 1e6,
        "load_seconds": seconds,
        "query_to_json_microseconds": per_query * 1e6,
    }


# --- 2. http -------------------------------------------------------------------------------------------
def serve(port: int, count: int, customers: int, tokens: Path) -> None:
    """The child process: load the projection, write the customers' tokens, serve until SIGTERM."""
    before = rss_kib()
    view = projection.Projection()
    started = time.perf_counter()
    load(view, count, customers)
    seconds = time.perf_counter() - started
    gc.collect()
    grown = rss_kib() - before
    expires = int(time.time()) + 3600
    tokens.write_text(
        "".join(
            f"{customer_id(i)} {auth.mint(SECRET, customer_id(i), expires=expires)}\n"
            for i in range(customers)
        )
    )

    async def main() -> None:
        app = server.make_app(view, auth.Policy(mode="token", secret=SECRET))
        http_server = server.Server(app, host="127.0.0.1", port=port)
        await http_server.start()
        print(json.dumps({"listening": port, "rss_growth_kib": grown, "load_seconds": seconds}), flush=True)
        stopping = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
        await stopping.wait()
        await http_server.stop()

    asyncio.run(main())


WRK_SCRIPT = """
local requests = {}
function init(args)
  for line in io.lines(args[1]) do
    local id, token = line:match("(%S+) (%S+)")
    requests[#requests + 1] = wrk.format("GET", "/api/v1/customers/" .. id .. "/rentals",
      {["Authorization"] = "Bearer " .. token})
  end
  math.randomseed(os.time() + tonumber(tostring(requests):match("0x(%x+)"), 16) % 100000)
end
function request()
  return requests[math.random(#requests)]
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _milliseconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def parse_wrk(output: str) -> dict[str, Any]:
    distribution = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+(?:us|ms|s))$", output, re.MULTILINE))
    requests = re.search(r"^\s*(\d+) requests in", output, re.MULTILINE)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "p50_ms": _milliseconds(distribution["50"]),
        "p75_ms": _milliseconds(distribution["75"]),
        "p90_ms": _milliseconds(distribution["90"]),
        "p99_ms": _milliseconds(distribution["99"]),
        "requests": int(requests.group(1)) if requests else 0,
        "requests_per_second": float(rate.group(1)) if rate else 0.0,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def measure_http(count: int, customers: int, *, connections: list[int], seconds: int) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    workdir = Path(tempfile.mkdtemp(prefix="mypage-bench-"))
    tokens, script = workdir / "tokens.txt", workdir / "customers.lua"
    script.write_text(WRK_SCRIPT)
    port = free_port()
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "serve",
            "--port",
            str(port),
            "--rentals",
            str(count),
            "--customers",
            str(customers),
            "--tokens",
            str(tokens),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        started = json.loads(child.stdout.readline())
        log(
            f"server ready on port {port} "
            f"(RSS grew {started['rss_growth_kib'] / 1024:.1f} MiB loading {count:,} rentals "
            f"in {started['load_seconds']:.1f} s)"
        )
        url = f"http://127.0.0.1:{port}"
        results: dict[str, Any] = {
            "rss_growth_mib": started["rss_growth_kib"] / 1024,
            "load_seconds": started["load_seconds"],
            "runs": [],
        }
        # Warm up (first requests build caches in aiohttp and the allocator).
        subprocess.run(
            [wrk, "-t1", "-c4", "-d2s", "-s", str(script), url, "--", str(tokens)],
            capture_output=True,
            check=True,
        )
        for connection_count in connections:
            command = [
                wrk,
                "-t1",
                f"-c{connection_count}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(script),
                url,
                "--",
                str(tokens),
            ]
            cpu_before = cpu_seconds(child.pid)
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            run = {"connections": connection_count, "seconds": seconds, **parse_wrk(output)}
            # CPU time the server spent per request: what a request costs, whatever else the machine
            # is doing (latency figures, unlike this, suffer from other processes on the cores).
            run["server_cpu_us_per_request"] = (
                (cpu_seconds(child.pid) - cpu_before) / max(1, run["requests"]) * 1e6
            )
            run["load_average_1m"] = os.getloadavg()[0]
            log(
                f"wrk -c{connection_count}: p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, "
                f"{run['requests_per_second']:.0f} req/s, non-2xx {run['non_2xx']}, "
                f"server CPU {run['server_cpu_us_per_request']:.0f} µs/request, "
                f"load average {run['load_average_1m']:.1f}"
            )
            results["runs"].append(run)
        return results
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- 3. lag on the real control plane ---------------------------------------------------------------------
LAG_CUSTOMERS = 10


class _Reader:
    """Polls one MyPage's JSON API over a kept-alive connection, as fast as it answers."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        expires = int(time.time()) + 7200
        self.headers = {
            f"lag-{i}": {"Authorization": f"Bearer {auth.mint(SECRET, f'lag-{i}', expires=expires)}"}
            for i in range(LAG_CUSTOMERS)
        }

    def shown(self, customer: str, name: str) -> str | None:
        """`phase|message` of the rental as this MyPage shows it now."""
        try:
            self.connection.request(
                "GET", f"/api/v1/customers/{customer}/rentals", headers=self.headers[customer]
            )
            response = self.connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            return None
        if response.status != 200:
            return None
        for rental in json.loads(body)["rentals"]:
            if rental["name"] == name:
                return f"{rental['phase']}|{rental['message']}"
        return None


def _start_readers(
    kubeconfig: Path, namespace: str, workdir: Path, processes: list[Any]
) -> dict[str, _Reader]:
    """Gateway, operator (MyPage inside) and a `rental-operator mypage`; a reader for each MyPage."""
    from rental_devenv import testkit  # noqa: PLC0415
    from rental_gateway import testing  # noqa: PLC0415

    gateway = testing.GatewayProcess("--quiet", log_path=workdir / "gateway.log")
    gateway.start()
    processes.append(gateway)
    ports = {what: free_port() for what in ("operator", "standalone", "metrics")}
    secret = SECRET.decode()
    operator = testkit.OperatorProcess(
        kubeconfig,
        env={
            "RENTAL_PAYMENT_URL": gateway.url,
            "RENTAL_SHIPPING_URL": gateway.url,
            "RENTAL_NAMESPACES": namespace,
            "RENTAL_METRICS_PORT": str(ports["metrics"]),
            "RENTAL_MYPAGE_HOST": "127.0.0.1",
            "RENTAL_MYPAGE_PORT": str(ports["operator"]),
            "RENTAL_MYPAGE_TOKEN_SECRET": secret,
        },
        log_path=workdir / "operator.log",
    )
    operator.start()
    processes.append(operator)
    env = {
        **os.environ,
        "PYTHONSAFEPATH": "1",
        "RENTAL_NAMESPACES": namespace,
        "RENTAL_MYPAGE_HOST": "127.0.0.1",
        "RENTAL_MYPAGE_PORT": str(ports["standalone"]),
        "RENTAL_MYPAGE_TOKEN_SECRET": secret,
    }
    env.pop("KUBECONFIG", None)
    command = [str(Path(sys.executable).parent / "rental-operator"), "mypage", f"--kubeconfig={kubeconfig}"]
    with (workdir / "mypage.log").open("ab") as mypage_log:
        standalone = subprocess.Popen(command, stdout=mypage_log, stderr=subprocess.STDOUT, env=env)
    processes.append(_Stoppable(standalone))
    return {"operator": _Reader(ports["operator"]), "standalone": _Reader(ports["standalone"])}


class _Stoppable:
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=20)


def _changes(
    custom: Any, namespace: str, readers: dict[str, _Reader], *, rentals: int, changes: int
) -> dict[str, list[float]]:
    """Change one resting rental's status.message at a time; how long until each MyPage shows it."""
    lags: dict[str, list[float]] = {name: [] for name in readers}
    rng = random.Random(11)
    for change in range(changes):
        index = rng.randrange(rentals)
        name, customer = f"lag-{index}", f"lag-{index % LAG_CUSTOMERS}"
        expected = f"Rejected|bench change {change}"
        sent = time.perf_counter()
        custom.patch_namespaced_custom_object_status(
            "rental.purifier.io",
            "v1alpha1",
            namespace,
            "rentals",
            name,
            {"status": {"message": f"bench change {change}"}},
            _content_type="application/merge-patch+json",
        )
        waiting = set(readers)
        while waiting and time.perf_counter() < sent + 10:
            for target in list(waiting):
                if readers[target].shown(customer, name) == expected:
                    lags[target].append(time.perf_counter() - sent)
                    waiting.discard(target)
            time.sleep(0.0005)
        for target in waiting:
            log(f"change {change} did not reach {target} within 10 s")
    return lags


def measure_lag(kubeconfig_arg: str | None, *, rentals: int, changes: int) -> dict[str, Any]:
    import kubernetes  # noqa: PLC0415

    from rental_devenv import controlplane, testkit  # noqa: PLC0415

    workdir = Path(tempfile.mkdtemp(prefix="mypage-lag-"))
    plane = None
    if kubeconfig_arg:
        kubeconfig = Path(kubeconfig_arg)
    else:
        plane = controlplane.ControlPlane(directory=workdir / "controlplane")
        log("starting a control plane")
        plane.start()
        kubeconfig = plane.kubeconfig
    kubectl = [str(Path(sys.executable).parent / "kubectl"), f"--kubeconfig={kubeconfig}"]
    namespace = f"mypage-bench-{os.getpid()}"
    processes: list[Any] = []
    try:
        crds = str(REPO / "crds")
        subprocess.run(
            [*kubectl, "apply", "--server-side", "--force-conflicts", "-f", crds],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [*kubectl, "wait", "--for=condition=Established", "-f", crds], check=True, capture_output=True
        )
        subprocess.run([*kubectl, "create", "namespace", namespace], check=True, capture_output=True)
        readers = _start_readers(kubeconfig, namespace, workdir, processes)
        cluster = testkit.Cluster(kubeconfig, namespace)
        # Rentals of a purifier that does not exist are rejected on arrival and then rest: the operator
        # writes nothing more to them, so the status changes made here are the only ones.
        for index in range(rentals):
            cluster.create(
                testkit.rental(f"lag-{index}", "no-such-purifier", customer=f"lag-{index % LAG_CUSTOMERS}")
            )

        def settled() -> bool:
            return all(
                (reader.shown(f"lag-{i % LAG_CUSTOMERS}", f"lag-{i}") or "").startswith("Rejected|")
                for reader in readers.values()
                for i in range(rentals)
            )

        testkit.wait_for(settled, timeout=120, what="every rental rejected in both MyPages")
        client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        lags = _changes(
            kubernetes.client.CustomObjectsApi(client), namespace, readers, rentals=rentals, changes=changes
        )
        result: dict[str, Any] = {"rentals": rentals, "changes": changes}
        for target, values in lags.items():
            result[target] = {
                "seen": len(values),
                "p50_ms": percentile(values, 50) * 1000,
                "p99_ms": percentile(values, 99) * 1000,
                "max_ms": max(values) * 1000 if values else float("nan"),
                "mean_ms": statistics.fmean(values) * 1000 if values else float("nan"),
            }
            figures = result[target]
            log(f"lag via {target}: p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms")
        return result
    finally:
        for process in reversed(processes):
            process.stop()
        subprocess.run(
            [*kubectl, "delete", "namespace", namespace, "--wait=false"], check=False, capture_output=True
        )
        if plane is not None:
            plane.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    child = commands.add_parser("serve", help=argparse.SUPPRESS)
    child.add_argument("--port", type=int, required=True)
    child.add_argument("--rentals", type=int, required=True)
    child.add_argument("--customers", type=int, required=True)
    child.add_argument("--tokens", type=Path, required=True)
    parser.add_argument("--rentals", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--seconds", type=int, default=15, help="duration of each wrk run")
    parser.add_argument("--cluster", action="store_true", help="also measure the lag on a real control plane")
    parser.add_argument("--kubeconfig", default=None, help="use this control plane instead of starting one")
    parser.add_argument("--lag-rentals", type=int, default=20)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument(
        "--skip", choices=("memory", "http"), nargs="*", default=[], help="leave out these parts"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.port, args.rentals, args.customers, args.tokens)
        return 0
    figures: dict[str, Any] = {"machine": machine()}
    log(f"machine: {figures['machine']}")
    if "memory" not in args.skip:
        log(f"memory: loading {args.rentals:,} rentals of {args.customers:,} customers")
        figures["memory"] = memory = measure_memory(args.rentals, args.customers)
        log(
            f"projection: {memory['bytes_per_rental']:.0f} bytes per rental, "
            f"{memory['mb_per_100k']:.1f} MB per 100,000 (loaded in {memory['load_seconds']:.1f} s; "
            f"one customer's answer as JSON in {memory['query_to_json_microseconds']:.0f} µs)"
        )
    if "http" not in args.skip:
        figures["http"] = measure_http(
            args.rentals, args.customers, connections=args.connections, seconds=args.seconds
        )
    if args.cluster or args.kubeconfig:
        figures["lag"] = measure_lag(args.kubeconfig, rentals=args.lag_rentals, changes=args.changes)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
