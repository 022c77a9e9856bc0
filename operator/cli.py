"""`rental-operator`: the operator's command line.

`run` validates the configuration first (one line naming a bad setting, exit code 2), then runs Kopf
with the handlers of `rental_operator.handlers`. `mypage` runs MyPage alone (the read side, with its
own informer); `mypage-link` mints a customer's signed MyPage link. Called by the console script and
`python -m`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
import time

import kopf

from rental_operator import config
from rental_operator.runtime import memory

__all__ = ["main"]


def _tune_garbage_collector() -> None:
    """Collect cycles after 50,000 allocations instead of 700, with the start-up objects frozen.

    Every watch event and every pass allocates thousands of short-lived dicts; with the default
    thresholds the collector ran 4,600 times during a burst of 2,000 rentals and took 11.6 s, 15% of
    the operator's CPU, mostly rescanning long-lived objects (Kopf's per-object memory, the stores,
    the imported modules). Frozen start-up objects are never scanned again, and a first generation of
    50,000 lets most objects die before any scan: 41 collections and 2.4 s for the same burst, 14%
    less CPU per rental, for a few megabytes more at the peak. Full collections still run (every
    200 first-generation ones at most, and only when the old objects have grown by a quarter).
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)


def _run(args: argparse.Namespace) -> int:
    if args.kubeconfig:
        # Kopf logs in through the kubernetes library, which reads $KUBECONFIG when it is imported:
        # set it before anything imports that library.
        os.environ["KUBECONFIG"] = args.kubeconfig
    try:
        settings = config.load()
        mypage_settings = config.load_mypage()
    except config.ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    # Importing registers the handlers with Kopf's default registry.
    from rental_operator.handlers import kopf_tuning, lifecycle, watches  # noqa: F401, PLC0415

    kopf.configure(verbose=args.verbose)
    if not args.verbose:
        # Kopf logs every successful handler call at INFO: one line per watch event, which at a few
        # hundred rentals a second costs more than the work itself. The saga logs its own news.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    _tune_garbage_collector()
    namespaces = settings.namespace_list
    kopf_settings = kopf.OperatorSettings()
    if args.peering_lifetime is not None:
        kopf_settings.peering.lifetime = args.peering_lifetime
    priority = args.priority
    if priority is None and args.peering:
        # Distinct per replica with no per-pod configuration, and newest first: in a rolling update
        # the new replica takes over as soon as it runs and the old one pauses until it is stopped.
        priority = time.time_ns() // 1_000_000
    with memory.MemoryTrimmer():
        asyncio.run(
            kopf.operator(
                settings=kopf_settings,
                standalone=not args.peering,
                peering_name=args.peering or None,
                priority=priority,
                clusterwide=not namespaces,
                namespaces=namespaces,
                liveness_endpoint=args.liveness,
                memories=kopf_tuning.LeanMemories(),
                memo=kopf.Memo(
                    settings=settings,
                    mypage_settings=mypage_settings,
                    kubeconfig=args.kubeconfig,
                    peering=args.peering,
                ),
            )
        )
    return 0


def _mypage(args: argparse.Namespace) -> int:
    try:
        settings = config.load_mypage(require_secret=True)
    except config.ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from rental_operator.mypage import standalone  # noqa: PLC0415  # only this command needs aiohttp

    with memory.MemoryTrimmer():
        return standalone.run(
            settings, kubeconfig=args.kubeconfig, metrics_port=args.metrics_port, access_log=args.access_log
        )


def _mypage_link(args: argparse.Namespace) -> int:
    try:
        settings = config.load_mypage(require_secret=True)
    except config.ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    secret = settings.token_secret()
    if settings.mypage_auth != "token" or secret is None:
        print("mypage-link: links are signed tokens; RENTAL_MYPAGE_AUTH is not token", file=sys.stderr)
        return 2
    ttl = args.ttl_seconds or settings.mypage_token_ttl_seconds
    from rental_operator.mypage import auth  # noqa: PLC0415

    try:
        token = auth.mint(secret, args.customer, expires=int(time.time()) + ttl)
    except ValueError as error:
        print(f"mypage-link: {error}", file=sys.stderr)
        return 2
    if args.token_only:
        print(token)
    else:
        print(auth.page_link(args.base_url or str(settings.mypage_public_url), args.customer, token))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rental-operator", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the operator (configuration from RENTAL_* variables)")
    run.add_argument("--kubeconfig", default=None, help="kubeconfig to use outside a cluster")
    run.add_argument(
        "--liveness", default=None, help="serve Kopf's liveness probe, e.g. http://0.0.0.0:8081/healthz"
    )
    run.add_argument(
        "--peering", default="", help="Kopf peering name for active/standby replicas (default: standalone)"
    )
    run.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority: the live replica with the highest is active, the others stand by"
        " (default with --peering: the start time in milliseconds, so the newest replica leads)",
    )
    run.add_argument(
        "--peering-lifetime",
        type=int,
        default=None,
        help="seconds a replica's peering record stays valid without a keep-alive: how long a standby"
        " waits before taking over from a replica that died without a goodbye (Kopf's default: 60)",
    )
    run.add_argument("--verbose", action="store_true")
    mypage = commands.add_parser(
        "mypage",
        help="serve MyPage alone, with its own list-and-watch (configuration from RENTAL_MYPAGE_* variables)",
    )
    mypage.add_argument("--kubeconfig", default=None, help="kubeconfig to use outside a cluster")
    mypage.add_argument(
        "--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port (0: off)"
    )
    mypage.add_argument("--access-log", action="store_true", help="log every request")
    mypage.add_argument("--verbose", action="store_true")
    link = commands.add_parser(
        "mypage-link", help="print a customer's signed MyPage link (needs RENTAL_MYPAGE_TOKEN_SECRET)"
    )
    link.add_argument("--customer", required=True, help="the customer id (spec.customer.id)")
    link.add_argument(
        "--ttl-seconds", type=int, default=0, help="lifetime (default RENTAL_MYPAGE_TOKEN_TTL_SECONDS)"
    )
    link.add_argument("--base-url", default="", help="MyPage's public URL (default RENTAL_MYPAGE_PUBLIC_URL)")
    link.add_argument("--token-only", action="store_true", help="print only the bearer token")
    args = parser.parse_args(argv)
    if args.command == "mypage":
        return _mypage(args)
    if args.command == "mypage-link":
        return _mypage_link(args)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
