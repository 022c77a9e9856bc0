"""`python -m rental_gateway`: flags in, a running gateway out, until SIGTERM or Ctrl-C.

The first line on stdout is always `listening on http://HOST:PORT` (`https://` with `--tls-cert`,
flushed), so a harness that asks
for `--port 0` learns the port by reading one line; everything else goes to stderr, one line per
request. SIGTERM and SIGINT stop accepting, close the ledger after the transaction in flight, and exit
0. A flag that cannot be used stops start-up with one line naming it and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import ssl
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from . import app, declines, faults, ledger, server

__all__ = ["API_KEY_ENV", "build_parser", "default_db_path", "main"]

API_KEY_ENV = "GATEWAY_API_KEY"


def default_db_path() -> Path:
    """A fixed place in the temp dir, so a restarted gateway finds its ledger again."""
    return Path(tempfile.gettempdir()) / "rental-gateway" / "ledger.sqlite3"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rental_gateway",
        description="Reference partner gateway (payments, shipping, SMS) of the purifier rental operator.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8070, help="port to bind; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument(
        "--db",
        default=str(default_db_path()),
        help="SQLite ledger file, kept across restarts; ':memory:' for none (default: %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV) or None,
        help="require 'Authorization: Bearer KEY' on every request but /healthz "
        f"(default: ${API_KEY_ENV}, else none)",
    )
    parser.add_argument(
        "--auto-deliver-seconds",
        type=float,
        default=2.0,
        help="move shipping->delivered and returning->returned this long after the last change; 0 never "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--decline-above",
        type=int,
        default=None,
        metavar="AMOUNT",
        help=f"decline payments above this amount (reason {declines.AMOUNT_LIMIT_EXCEEDED}); customers "
        f"whose id starts with {declines.DECLINING_PREFIX!r} are always declined ({declines.CARD_DECLINED})",
    )
    faulting = parser.add_argument_group("fault injection (also at runtime: PUT /admin/faults)")
    faulting.add_argument("--error-rate", type=float, default=0.0, help="fraction of requests answered 503")
    faulting.add_argument("--latency-ms", type=int, default=0, help="delay added to every request")
    faulting.add_argument("--spike-probability", type=float, default=0.0, help="chance of an extra delay")
    faulting.add_argument("--spike-ms", type=int, default=0, help="the extra delay of a spike")
    faulting.add_argument(
        "--outage", choices=[str(outage) for outage in faults.Outage], default=str(faults.Outage.OFF)
    )
    faulting.add_argument(
        "--fault-partners",
        default=",".join(faults.PARTNERS),
        help="comma-separated partners the faults apply to (default: %(default)s)",
    )
    faulting.add_argument(
        "--seed", type=int, default=None, help="seed for the fault dice (reproducible runs)"
    )
    parser.add_argument(
        "--tls-cert",
        default=None,
        metavar="PEM",
        help="serve https with this certificate (chain) file; needs --tls-key (default: plain http)",
    )
    parser.add_argument("--tls-key", default=None, metavar="PEM", help="the private key of --tls-cert")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s %(message)s",
    )
    try:
        fault_settings = faults.FaultSettings(
            error_rate=args.error_rate,
            latency_ms=args.latency_ms,
            spike_probability=args.spike_probability,
            spike_ms=args.spike_ms,
            outage=faults.Outage(args.outage),
            partners=frozenset(name.strip() for name in args.fault_partners.split(",") if name.strip()),
        )
    except ValueError as error:
        parser.error(str(error))
    if args.auto_deliver_seconds < 0:
        parser.error("--auto-deliver-seconds must be >= 0")
    if args.decline_above is not None and args.decline_above < 0:
        parser.error("--decline-above must be >= 0")
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    tls = None
    if args.tls_cert is not None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            tls.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as error:
            print(f"error: --tls-cert/--tls-key: {error}", file=sys.stderr)
            return 2

    try:
        store = ledger.Ledger(args.db, auto_advance_seconds=args.auto_deliver_seconds)
    except Exception as error:  # sqlite3 and filesystem errors alike: one line, not a traceback
        print(f"error: --db {args.db}: {error}", file=sys.stderr)
        return 2
    gateway = app.Gateway(
        store,
        api_key=args.api_key,
        fault_settings=fault_settings,
        decline_rule=declines.DeclineRule(amount_above=args.decline_above),
        seed=args.seed,
    )
    try:
        httpd = server.GatewayServer((args.host, args.port), gateway, tls=tls)
    except OSError as error:
        print(f"error: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        store.close()
        return 2

    print(f"listening on {httpd.url}", flush=True)
    logging.getLogger("rental_gateway").info(
        "ledger %s, auto-deliver %ss, auth %s, faults %s",
        store.path,
        args.auto_deliver_seconds,
        "on" if args.api_key else "off",
        fault_settings.to_json(),
    )
    _serve_until_signalled(httpd)
    store.close()
    logging.getLogger("rental_gateway").info("stopped")
    return 0


def _serve_until_signalled(httpd: server.GatewayServer) -> None:
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    # A short poll interval makes shutdown quick; the loop itself costs next to nothing.
    loop = threading.Thread(target=httpd.serve_forever, args=(0.05,), name="rental-gateway", daemon=True)
    loop.start()
    try:
        # A short timeout keeps the main thread returning to the interpreter, where signals run.
        while not stopping.wait(0.1):
            pass
    finally:
        httpd.shutdown()
        httpd.server_close()
        loop.join()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
