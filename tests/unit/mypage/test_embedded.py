"""mypage.embedded: MyPage inside the operator: fed by Kopf's events, ready after one listing,
never taking the operator down with it."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import types
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import kubernetes
import pytest

from rental_operator import config, kubeapi
from rental_operator.mypage import embedded, informer, projection

RentalFactory = Callable[..., dict[str, Any]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _settings(port: int) -> config.MyPageSettings:
    return config.load_mypage(
        {"RENTAL_MYPAGE_HOST": "127.0.0.1", "RENTAL_MYPAGE_PORT": str(port), "RENTAL_MYPAGE_AUTH": "none"}
    )


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def listing(monkeypatch: pytest.MonkeyPatch, rental_body: RentalFactory) -> threading.Event:
    """Stands in for the API: the initial listing returns one rental once the test sets the event."""
    release = threading.Event()

    def load_once(kube: Any, view: projection.Projection, namespaces: Any) -> None:
        assert release.wait(10)
        view.replace("Rental", None, [([rental_body("listed", customer="c1", version=3)], "5")])
        view.mark_ready()

    class Client:
        configuration = kubernetes.client.Configuration()

        def close(self) -> None:
            pass

    monkeypatch.setattr(kubeapi, "load_client", lambda kubeconfig=None: Client())
    monkeypatch.setattr(informer, "load_once", load_once)
    return release


def test_serves_kopf_events_and_is_ready_after_the_listing(
    listing: threading.Event, rental_body: RentalFactory
) -> None:
    port = _free_port()

    async def main() -> None:
        mypage = embedded.Embedded(_settings(port), namespaces=[], kubeconfig=None)
        assert await mypage.start()
        try:
            mypage.feed("Rental", "ADDED", rental_body("from-kopf", customer="c1", version=7))
            status, _ = await asyncio.to_thread(_get, port, "/readyz")
            assert status == 503
            listing.set()
            for _ in range(100):
                if mypage.projection.ready:
                    break
                await asyncio.sleep(0.02)
            status, body = await asyncio.to_thread(_get, port, "/api/v1/customers/c1/rentals")
            assert status == 200
            assert sorted(r["name"] for r in json.loads(body)["rentals"]) == [
                "from-kopf",
                "listed",
            ]
        finally:
            await mypage.stop()

    asyncio.run(main())


def test_a_taken_port_is_logged_and_the_operator_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def main() -> bool:
            return await embedded.Embedded(_settings(port), namespaces=[], kubeconfig=None).start()

        with caplog.at_level(logging.ERROR):
            assert asyncio.run(main()) is False
    assert "MyPage is not served" in caplog.text


def test_with_its_own_watch_kopf_events_are_ignored(
    monkeypatch: pytest.MonkeyPatch, rental_body: RentalFactory
) -> None:
    started: list[informer.Informer] = []
    client = types.SimpleNamespace(configuration=kubernetes.client.Configuration())
    monkeypatch.setattr(kubeapi, "load_client", lambda kubeconfig=None: client)

    def start(self: informer.Informer) -> None:
        started.append(self)

    monkeypatch.setattr(informer.Informer, "start", start)
    monkeypatch.setattr(informer.Informer, "stop", lambda self, timeout=5.0: None)

    async def main() -> None:
        mypage = embedded.Embedded(_settings(_free_port()), namespaces=[], kubeconfig=None, own_watch=True)
        assert await mypage.start()
        mypage.feed("Rental", "ADDED", rental_body())
        assert len(mypage.projection) == 0
        assert len(started) == 1
        await mypage.stop()

    asyncio.run(main())


def test_a_rental_out_of_range_does_not_keep_the_operators_mypage_unready(
    monkeypatch: pytest.MonkeyPatch, rental_body: RentalFactory
) -> None:
    """The real `load_once` over a listing holding a seq past 2**32: ready, and the rest served."""
    bad = rental_body("bad", customer="c2", version=3)
    bad["status"]["history"][0]["seq"] = 2**40
    good = rental_body("good", customer="c1", version=4)

    class Kube:
        def __init__(self, client: Any) -> None:
            pass

        def list_pages(self, resource: Any, namespace: str | None) -> Any:
            return [([bad, good] if resource.kind == "Rental" else [], "5")]

    client = types.SimpleNamespace(configuration=kubernetes.client.Configuration(), close=lambda: None)
    monkeypatch.setattr(kubeapi, "load_client", lambda kubeconfig=None: client)
    monkeypatch.setattr(kubeapi, "Kube", Kube)
    port = _free_port()

    async def main() -> None:
        mypage = embedded.Embedded(_settings(port), namespaces=[], kubeconfig=None)
        assert await mypage.start()
        try:
            for _ in range(100):
                if mypage.projection.ready:
                    break
                await asyncio.sleep(0.02)
            assert (await asyncio.to_thread(_get, port, "/readyz"))[0] == 200
            status, body = await asyncio.to_thread(_get, port, "/api/v1/customers/c1/rentals")
            assert status == 200
            assert [r["name"] for r in json.loads(body)["rentals"]] == ["good"]
            mypage.feed("Rental", "MODIFIED", bad)  # the same through Kopf's events: skipped
            assert (await asyncio.to_thread(_get, port, "/readyz"))[0] == 200
        finally:
            await mypage.stop()

    asyncio.run(main())
