"""`rental-operator mypage`: MyPage as its own stateless process, with its own informer.

Customers read their rentals far more often than rentals change, so the read side scales on its own:
any number of these processes (a Deployment behind a Service, autoscaled on request rate), each with
a full projection from its own list-and-watch, none writing anything, none talking to the operator.
They keep serving while the operator is down or being redeployed. Start-up lists, then `/readyz`
turns 200; SIGTERM stops the listener first, then the informer. Called by `rental_operator.cli`.

Metrics go on a port of their own (`--metrics-port`), never on MyPage's: the MyPage port is what
customers reach, and the metrics say how busy the business is. The same port for both is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import prometheus_client

from rental_operator import config, kubeapi
from rental_operator.mypage import commands, informer, projection, server

__all__ = ["run"]

logger = logging.getLogger(__name__)


async def _serve(
    settings: config.MyPageSettings, *, kubeconfig: str | None, metrics_port: int, access_log: bool
) -> None:
    kube = kubeapi.Kube(kubeapi.load_client(kubeconfig))
    view = projection.Projection()
    feeding = informer.Informer(kube, view, settings.namespace_list)
    # The web app's commands write through the same client (its ServiceAccount may create and patch
    # Rentals); RENTAL_WEB_ENABLED=false leaves it read-only, and applying then answers 503.
    writer = commands.Writer(kube if settings.web_enabled else None)
    app = server.make_app(
        view,
        server.policy_from_settings(settings),
        writer=writer,
        open_applications=settings.web_open_applications,
        public_url=str(settings.mypage_public_url),
    )
    http = server.Server(app, host=settings.mypage_host, port=settings.mypage_port, access_log=access_log)
    if metrics_port:
        prometheus_client.start_http_server(metrics_port, addr=settings.mypage_host)
    await http.start()
    print(f"mypage listening on http://{settings.mypage_host}:{http.port}", flush=True)
    feeding.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        logger.info("MyPage stopping")
        await http.stop()
        await asyncio.to_thread(feeding.stop)


def run(
    settings: config.MyPageSettings,
    *,
    kubeconfig: str | None = None,
    metrics_port: int = 0,
    access_log: bool = False,
) -> int:
    """Serve until SIGTERM or SIGINT; the exit status (2 for a metrics port that is MyPage's own)."""
    if metrics_port and metrics_port == settings.mypage_port:
        logger.error(
            "--metrics-port must differ from RENTAL_MYPAGE_PORT (%d): metrics are not public", metrics_port
        )
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings, kubeconfig=kubeconfig, metrics_port=metrics_port, access_log=access_log))
    return 0
