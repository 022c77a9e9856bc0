"""Operator start-up and shutdown: Kopf settings, and the controllers' context built once into memo.

Kopf's settings are chosen for this design: the saga reacts to watch events (`kopf.on.event`, which
writes nothing to the objects: no progress annotations, no last-handled-configuration, no Kopf
finalizer), so the only writes are the saga's own, and Kopf's change detection is switched off
(`NoDiffBase`). The handlers are async and only queue work; the controllers run on the scheduler's
worker threads (`runtime.scheduler`), sized for many rentals in flight.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from rental_operator import kubeapi, metrics
from rental_operator.controllers import context
from rental_operator.handlers import kopf_tuning
from rental_operator.mypage import embedded
from rental_operator.partners import payments, shipping, sms
from rental_operator.runtime import scheduler

__all__ = ["configure", "login", "shutdown", "start_mypage", "stop_mypage"]

logger = logging.getLogger(__name__)
WORKERS = 64  # concurrent reconciliations (each holds its object's lock; see runtime.scheduler)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config = memo["settings"]
    # The handlers are async and only queue work; the controllers run on the scheduler's workers.
    settings.execution.max_workers = 4
    settings.posting.level = logging.WARNING  # Kopf's own Events only for trouble; the saga posts its own
    settings.watching.server_timeout = 300
    # List in pages: one unpaged list of 10,000 rentals is a response of tens of megabytes parsed at
    # once, and the peak stays in the process's RSS long after.
    settings.watching.chunk_size = 500
    settings.networking.request_timeout = 30
    settings.persistence.diffbase_storage = kopf_tuning.NoDiffBase()
    kopf_tuning.parse_watch_streams_with_orjson()
    # Kopf keeps a worker per object until it has been idle this long, and an idle worker still holds
    # the last body it handled. With the default 5 s, the start-up listing of 4,000 rentals (12,000
    # objects) left the operator at 242-250 MB RSS; at 0.5 s, 138 MB (bench/saga.py, restarted with
    # them present). A saga's events for one object come seconds apart, so the cost is a worker
    # started again per event, which is cheap next to handling it.
    settings.queueing.idle_timeout = 0.5
    kube = kubeapi.Kube(kubeapi.load_client(memo.get("kubeconfig")))
    settings.watching.initial_streaming = kopf_tuning.streams_initial_lists(kube.server_version())
    recorder = kubeapi.EventRecorder(kube)
    recorder.start()
    # Passes mostly wait on the API server and the partners: many threads, little CPU each.
    requeue = scheduler.Scheduler(workers=WORKERS)
    requeue.start()
    memo["context"] = context.Context(
        settings=config,
        kube=kube,
        events=recorder,
        payment_client=payments.PaymentClient(
            config, breaker_listener=metrics.observe_breaker, observe=metrics.observe_payment
        ),
        shipping_client=shipping.ShippingClient(config),
        sms_sender=sms.sender_from_settings(config),
        scheduler=requeue,
    )
    ctx: context.Context = memo["context"]
    metrics.register_state_collector(ctx.rentals.summaries, ctx.purifiers.values, ctx.scheduler.pending)
    metrics.serve(config.metrics_port, config.metrics_address)
    logger.info(
        "operator configured: payments at %s, shipping at %s",
        _origin(config.payment_url),
        _origin(config.shipping_url),
    )


def _origin(url: Any) -> str:
    """Scheme, host and port only: a URL may carry credentials (user:password@) that must not be logged."""
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"


@kopf.on.login()
def login(memo: kopf.Memo, settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
    """Kopf's watches use the same credentials as our client: in-cluster, else the given kubeconfig.

    (Kopf's default login reads $KUBECONFIG once at import time, too early for `--kubeconfig`.)
    """
    configuration = kubeapi.load_client(memo.get("kubeconfig")).configuration
    header = configuration.api_key.get("BearerToken") or configuration.api_key.get("authorization") or ""
    scheme, _space, token = str(header).rpartition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        scheme=scheme or ("Bearer" if token else None),
        token=token or None,
        trust_env=settings.networking.trust_env,
    )


@kopf.on.startup()
async def start_mypage(memo: kopf.Memo, **_: Any) -> None:
    """MyPage inside the operator (unless RENTAL_MYPAGE_ENABLED=false): see `mypage.embedded`."""
    mypage_settings = memo.get("mypage_settings")
    if mypage_settings is None or not mypage_settings.mypage_enabled:
        return
    mypage = embedded.Embedded(
        mypage_settings,
        namespaces=memo["settings"].namespace_list,
        kubeconfig=memo.get("kubeconfig"),
        # A standby replica (peering) gets no watch events from Kopf: its MyPage watches by itself.
        own_watch=bool(memo.get("peering")),
    )
    if await mypage.start():
        memo["mypage"] = mypage


@kopf.on.cleanup()
async def stop_mypage(memo: kopf.Memo, **_: Any) -> None:
    mypage: embedded.Embedded | None = memo.get("mypage")
    if mypage is not None:
        await mypage.stop()


@kopf.on.cleanup()
def shutdown(memo: kopf.Memo, **_: Any) -> None:
    ctx: context.Context | None = memo.get("context")
    if ctx is None:
        return
    ctx.scheduler.stop()
    ctx.events.stop()
    ctx.payment_client.close()
    ctx.shipping_client.close()
    ctx.sms_sender.close()
