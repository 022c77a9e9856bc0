"""The operator's only caller of the Kubernetes API (besides Kopf's own watches).

Everything the saga writes goes through here: status replacements guarded by resourceVersion
(optimistic concurrency: a decision made on a stale view fails with `Conflict` instead of overwriting
newer state), creation of owned Payments and Deliveries (idempotent: an existing object is returned),
spec flags and finalizers. Kept small and typed so the write budget per rental can be read off it.
Called by the controllers in `rental_operator.controllers`; MyPage's informer reads whole collections
through `list_pages` and `watch` (`rental_operator.mypage.informer`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any, Final

import kubernetes
import orjson
from kubernetes.client import ApiException

from rental_operator import kubehttp
from rental_operator.api import meta

__all__ = ["Conflict", "EventRecorder", "Gone", "Kube", "NotFound", "WatchStream", "load_client"]

logger = logging.getLogger(__name__)
_MERGE_PATCH: Final = "application/merge-patch+json"
# (connect, read) seconds for one request: a hung API server must not hang a worker thread forever.
_REQUEST_TIMEOUT: Final = (5.0, 30.0)


class Conflict(Exception):  # noqa: N818  # the HTTP name, as Kubernetes uses it
    """The object changed since it was read (409): read again and decide again."""


class NotFound(Exception):  # noqa: N818
    """The object does not exist (404)."""


class Gone(Exception):  # noqa: N818
    """The resourceVersion to watch from is too old (410): list again, then watch from the list."""


def load_client(kubeconfig: str | None = None) -> kubernetes.client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
    # Handlers run in a thread pool; give the client a connection per worker.
    configuration.connection_pool_maxsize = 64
    return kubernetes.client.ApiClient(configuration)


def _translate(error: ApiException) -> Exception:
    if error.status == 409:
        return Conflict(str(error.reason))
    if error.status == 404:
        return NotFound(str(error.reason))
    if error.status == 410:
        return Gone(str(error.reason))
    return error


@dataclasses.dataclass
class Kube:
    client: kubernetes.client.ApiClient
    # libcurl for the saga's requests (see kubehttp); False, or a configuration with a proxy or a TLS
    # server name: through the client.
    curl: bool = True
    _custom: Any = dataclasses.field(init=False, repr=False)
    _http: kubehttp.CurlTransport | None = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._custom = kubernetes.client.CustomObjectsApi(self.client)
        self._http = (
            kubehttp.CurlTransport.for_configuration(
                self.client.configuration,
                connect_timeout=_REQUEST_TIMEOUT[0],
                total_timeout=_REQUEST_TIMEOUT[1],
            )
            if self.curl
            else None
        )

    def _call(
        self, method: str, path: str, *, body: Any = None, content_type: str = "application/json"
    ) -> dict[str, Any]:
        """One request with the client's configuration (TLS, credentials, token refresh).

        Through libcurl when it can (`kubehttp`: a fraction of the CPU per request), else through the
        client's own serialisation and transport; never through the generated API methods, which
        validate every argument with pydantic on every call (a quarter of the CPU under load once).
        """
        if self._http is not None:
            answer = self._http.request(
                method, path, body=None if body is None else orjson.dumps(body), content_type=content_type
            )
            if not 200 <= answer.status < 300:
                error = ApiException(status=answer.status, reason=answer.reason)
                error.body = answer.body.decode("utf-8", errors="replace")
                raise _translate(error)
            decoded: dict[str, Any] = orjson.loads(answer.body)
            return decoded
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        request = self.client.param_serialize(
            method=method, resource_path=path, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        response = self.client.call_api(*request, _request_timeout=_REQUEST_TIMEOUT)
        data = response.read()  # type: ignore[no-untyped-call]
        if not 200 <= response.status < 300:
            raise _translate(ApiException(http_resp=response))
        result: dict[str, Any] = json.loads(data)
        return result

    @staticmethod
    def _path(
        resource: meta.Resource, namespace: str, name: str | None = None, sub: str | None = None
    ) -> str:
        path = f"/apis/{resource.group}/{resource.version}/namespaces/{namespace}/{resource.plural}"
        return path + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")

    def server_version(self) -> dict[str, Any]:
        """The API server's `/version` (`major`, `minor`, `gitVersion`, ...)."""
        return self._call("GET", "/version")

    def get(self, resource: meta.Resource, namespace: str, name: str) -> dict[str, Any]:
        return self._call("GET", self._path(resource, namespace, name))

    def create(self, resource: meta.Resource, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create `body`; if an object of that name exists already, return it (creation is idempotent)."""
        try:
            return self._call("POST", self._path(resource, namespace), body=body)
        except Conflict:
            return self.get(resource, namespace, body["metadata"]["name"])

    def create_new(self, resource: meta.Resource, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create `body`, or raise `Conflict` if its name is taken (the caller decides whose it is).

        For creates on a customer's behalf (MyPage's web app): any other refusal (403, 422 with
        `details.causes` naming the fields) is raised with its `status` and `body`, as the server sent it.
        """
        return self._call("POST", self._path(resource, namespace), body=body)

    def replace_status(
        self, resource: meta.Resource, obj: dict[str, Any], status: dict[str, Any]
    ) -> dict[str, Any]:
        """Write the whole status of `obj`, if the object is still at `obj`'s resourceVersion."""
        metadata = obj["metadata"]
        body = {
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "metadata": {"name": metadata["name"], "resourceVersion": metadata["resourceVersion"]},
            "spec": obj.get("spec", {}),
            "status": status,
        }
        return self._call(
            "PUT", self._path(resource, metadata["namespace"], metadata["name"], "status"), body=body
        )

    def merge_patch(
        self, resource: meta.Resource, obj: dict[str, Any], patch: dict[str, Any], *, guarded: bool = True
    ) -> dict[str, Any]:
        """JSON-merge-patch the object (not its status); `guarded` adds the resourceVersion precondition."""
        metadata = obj["metadata"]
        if guarded:
            patch = {
                **patch,
                "metadata": {**patch.get("metadata", {}), "resourceVersion": metadata["resourceVersion"]},
            }
        path = self._path(resource, metadata["namespace"], metadata["name"])
        return self._call("PATCH", path, body=patch, content_type=_MERGE_PATCH)

    def delete(self, resource: meta.Resource, obj: dict[str, Any]) -> None:
        """Delete `obj` itself: guarded by its uid, so another object that took its name since is never
        deleted; gone already (or replaced) is success, the object `obj` is no more either way."""
        metadata = obj["metadata"]
        options = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "preconditions": {"uid": metadata["uid"]},
            "propagationPolicy": "Background",
        }
        with contextlib.suppress(NotFound, Conflict):
            self._call("DELETE", self._path(resource, metadata["namespace"], metadata["name"]), body=options)

    # --- reading whole collections (MyPage's informer) ---
    def list_pages(
        self, resource: meta.Resource, namespace: str | None, *, page_size: int = 500
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """Every object of `resource` in `namespace` (None: the cluster), a page at a time, each with
        the listing's resourceVersion (the same on every page: the continue token pins the snapshot).

        Paged so that a large collection is never held whole: the caller digests a page, then asks
        for the next.
        """
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": page_size}
            if token:
                kwargs["_continue"] = token
            try:
                if namespace:
                    page = self._custom.list_namespaced_custom_object(
                        resource.group, resource.version, namespace, resource.plural, **kwargs
                    )
                else:
                    page = self._custom.list_cluster_custom_object(
                        resource.group, resource.version, resource.plural, **kwargs
                    )
            except ApiException as error:
                raise _translate(error) from None
            metadata = page.get("metadata") or {}
            yield list(page.get("items") or []), str(metadata.get("resourceVersion") or "")
            token = metadata.get("continue")
            if not token:
                return

    def watch(
        self,
        resource: meta.Resource,
        namespace: str | None,
        resource_version: str,
        *,
        timeout_seconds: int = 300,
    ) -> WatchStream:
        """Open a watch from `resource_version` (with bookmarks); returns once the server answered."""
        kwargs: dict[str, Any] = {
            "watch": True,
            "resource_version": resource_version,
            "allow_watch_bookmarks": True,
            "timeout_seconds": timeout_seconds,
            "_preload_content": False,
            # The server ends the watch after timeout_seconds; the read timeout only catches a dead peer.
            "_request_timeout": (10, timeout_seconds + 30),
        }
        try:
            if namespace:
                response = self._custom.list_namespaced_custom_object(
                    resource.group, resource.version, namespace, resource.plural, **kwargs
                )
            else:
                response = self._custom.list_cluster_custom_object(
                    resource.group, resource.version, resource.plural, **kwargs
                )
        except ApiException as error:
            raise _translate(error) from None
        return WatchStream(response)

    def post_event(self, obj: dict[str, Any], *, type_: str, reason: str, message: str) -> None:
        """Record a Kubernetes Event on `obj`; failures are not worth failing a step for."""
        metadata = obj["metadata"]
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # A plain dict: the client's model classes cost more CPU than the request itself.
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{metadata['name']}.", "namespace": metadata["namespace"]},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "purifier-rental-operator"},
            "reportingComponent": "rental.purifier.io/operator",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self._call("POST", f"/api/v1/namespaces/{metadata['namespace']}/events", body=event)
        except Exception as error:  # an Event is news, not state: never fail or retry a step for it
            logger.debug("event %s on %s not recorded: %s", reason, metadata["name"], error)


class WatchStream:
    """One open watch: iterate for `{"type", "object"}` events; `close()` from any thread ends it.

    BOOKMARK events are passed on (their object carries only the resourceVersion to resume from); an
    ERROR event raises `Gone` for 410 and `RuntimeError` otherwise.
    """

    def __init__(self, response: Any) -> None:
        self._response = response
        self._reading = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        pending = b""
        self._reading = True
        try:
            for chunk in self._response.stream(amt=65536, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield self._event(line)
        finally:
            self._reading = False
            self._release()

    @staticmethod
    def _event(line: bytes) -> dict[str, Any]:
        event: dict[str, Any] = orjson.loads(line)
        if event.get("type") == "ERROR":
            status = event.get("object") or {}
            if status.get("code") == 410:
                raise Gone(str(status.get("message", "resource version too old")))
            raise RuntimeError(f"watch error: {status.get('message', status)}")
        return event

    def close(self) -> None:
        # Closing a response another thread is reading can deadlock on the TLS socket; shutting the
        # socket down makes that read return, and the reader releases the connection itself.
        with contextlib.suppress(Exception):
            self._response.shutdown()
        if not self._reading:
            self._release()

    def _release(self) -> None:
        with contextlib.suppress(Exception):
            self._response.close()
        with contextlib.suppress(Exception):
            self._response.release_conn()


class EventRecorder:
    """Posts Kubernetes Events from background threads, so recording a step never slows the step.

    A queued Event keeps only the reference to its object (a few strings), not the object: under a
    burst thousands wait, and holding a whole body for each would cost hundreds of megabytes.
    """

    def __init__(self, kube: Kube, *, capacity: int = 10_000, workers: int = 4) -> None:
        self._kube = kube
        self._queue: queue.Queue[tuple[dict[str, Any], str, str, str] | None] = queue.Queue(capacity)
        self._threads = [
            threading.Thread(target=self._run, name=f"events-{number}", daemon=True)
            for number in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        for _ in self._threads:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
        for thread in self._threads:
            thread.join(timeout=5)

    def record(self, obj: dict[str, Any], *, type_: str, reason: str, message: str) -> None:
        metadata = obj["metadata"]
        reference = {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "metadata": {key: metadata.get(key) for key in ("name", "namespace", "uid", "resourceVersion")},
        }
        with contextlib.suppress(queue.Full):  # under overload, drop Events rather than block the saga
            self._queue.put_nowait((reference, type_, reason, message))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            obj, type_, reason, message = item
            self._kube.post_event(obj, type_=type_, reason=reason, message=message)
