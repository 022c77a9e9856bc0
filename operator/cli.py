"""`rental-operator`: the operator's command line.

`run` validates the configuration first (one line naming a bad setting, exit code 2), then runs Kopf
with the handlers of `rental_operator.handlers`. Called by the console script and `python -m`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import kopf

from rental_operator import config

__all__ = ["main"]


def _run(args: argparse.Namespace) -> int:
    if args.kubeconfig:
        # Kopf logs in through the kubernetes library, which reads $KUBECONFIG when it is imported:
        # set it before anything imports that library.
        os.environ["KUBECONFIG"] = args.kubeconfig
    try:
        settings = config.load()
    except config.ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    # Importing registers the handlers with Kopf's default registry.
    from rental_operator.handlers import lifecycle, watches  # noqa: F401, PLC0415

    kopf.configure(verbose=args.verbose)
    namespaces = settings.namespace_list
    asyncio.run(
        kopf.operator(
            standalone=not args.peering,
            peering_name=args.peering or None,
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=args.liveness,
            memo=kopf.Memo(settings=settings, kubeconfig=args.kubeconfig),
        )
    )
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
    run.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
