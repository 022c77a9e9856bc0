"""MyPage inside the operator: the projection fed by Kopf's events, served from Kopf's event loop.

The operator already watches every Rental and Purifier, so inside it MyPage needs no watch of its
own: the Kopf event handlers hand each event to `feed`. Readiness still needs a complete picture, so
start-up lists both kinds once in the background (a thread: the client is synchronous) and marks the
projection ready when that listing is loaded; events that arrive meanwhile are kept if newer.

With peering (active/standby replicas), Kopf stops delivering events to a standby replica, whose
MyPage would silently fall behind; there MyPage runs its own informer instead (`own_watch`) and
ignores Kopf's events, so every replica serves current data.

Listening is best effort: if the port is taken, the error is logged and the operator runs on without
MyPage (the saga matters more than its read side, which can also run as `rental-operator mypage`).
Called by `handlers.lifecycle` (start, stop) and `handlers.watches` (feed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from rental_operator import config, kubeapi
from rental_operator.mypage import commands, informer, projection, server

__all__ = ["Embedded"]

logger = logging.getLogger(__name__)


class Embedded:
    def __init__(
        self,
        settings: config.MyPageSettings,
        *,
        namespaces: Sequence[str],
        kubeconfig: str | None,
        own_watch: bool = False,
    ) -> None:
        self.settings = settings
        self.projection = projection.Projection()
        self._namespaces = list(namespaces)
        self._kubeconfig = kubeconfig
        self._own_watch = own_watch
        self._informer: informer.Informer | None = None
        # The web app's commands get their client at start (loading it is blocking I/O).
        self._writer = commands.Writer()
        self._server = server.Server(
            server.make_app(
                self.projection,
                server.policy_from_settings(settings),
                writer=self._writer,
                open_applications=settings.web_open_applications,
                public_url=str(settings.mypage_public_url),
            ),
            host=settings.mypage_host,
            port=settings.mypage_port,
        )
        self._loading: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return self._server.port

    async def start(self) -> bool:
        """Listen and start loading; False (and an error logged) when the port cannot be bound."""
        try:
            await self._server.start()
        except OSError as error:
            logger.error(
                "MyPage is not served: cannot listen on %s:%d (%s); the operator runs on without it",
                self.settings.mypage_host,
                self.settings.mypage_port,
                error,
            )
            return False
        if self._own_watch or self.settings.web_enabled:
            client = await asyncio.to_thread(kubeapi.load_client, self._kubeconfig)
            kube = kubeapi.Kube(client)
            if self.settings.web_enabled:
                self._writer.kube = kube
            if self._own_watch:
                self._informer = informer.Informer(kube, self.projection, self._namespaces)
                self._informer.start()
        if not self._own_watch:
            self._loading = asyncio.create_task(self._load(), name="mypage-initial-listing")
        return True

    async def stop(self) -> None:
        if self._informer is not None:
            await asyncio.to_thread(self._informer.stop)
        if self._loading is not None:
            self._loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loading
        await self._server.stop()

    def feed(self, kind: str, event_type: str | None, obj: Mapping[str, Any]) -> None:
        """One Kopf watch event of a Rental or Purifier (ignored when MyPage watches by itself)."""
        if not self._own_watch:
            self.projection.apply(kind, event_type, obj)

    async def _load(self) -> None:
        delay = 1.0
        while True:
            try:
                await asyncio.to_thread(self._list)
                return
            except Exception as error:
                logger.warning("MyPage initial listing failed: %s; retrying in %.0fs", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _list(self) -> None:
        client = kubeapi.load_client(self._kubeconfig)
        try:
            informer.load_once(kubeapi.Kube(client), self.projection, self._namespaces)
        finally:
            client.close()  # type: ignore[no-untyped-call]
