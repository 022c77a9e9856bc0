"""The operator's only caller of the Kubernetes API (besides Kopf's own watches).

Everything the saga writes goes through here: status replacements guarded by resourceVersion
(optimistic concurrency: a decision made on a stale view fails with `Conflict` instead of overwriting
newer state), creation of owned Payments and Deliveries (idempotent: an existing object is returned),
spec flags and finalizers. Kept small and typed so the write budget per rental can be read off it.
Called by the controllers in `rental_operator.controllers`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any, Final

import kubernetes
from kubernetes.client import ApiException

from rental_operator.api import meta

__all__ = ["Conflict", "EventRecorder", "Gone", "Kube", "NotFound", "WatchStream", "load_client"]

_MERGE_PATCH: Final = "application/merge-patch+json"


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
    configuration.connection_pool_maxsize = 32
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
    _custom: Any = dataclasses.field(init=False, repr=False)
    _events: Any = dataclasses.field(init=False, repr=False)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._custom = kubernetes.client.CustomObjectsApi(self.client)
        self._events = kubernetes.client.CoreV1Api(self.client)

    def get(self, resource: meta.Resource, namespace: str, name: str) -> dict[str, Any]:
        try:
            return dict(
                self._custom.get_namespaced_custom_object(
                    resource.group, resource.version, namespace, resource.plural, name
                )
            )
        except ApiException as error:
            raise _translate(error) from None

    def create(self, resource: meta.Resource, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create `body`; if an object of that name exists already, return it (creation is idempotent)."""
        try:
            return dict(
                self._custom.create_namespaced_custom_object(
                    resource.group, resource.version, namespace, resource.plural, body
                )
            )
        except ApiException as error:
            if error.status == 409:
                return self.get(resource, namespace, body["metadata"]["name"])
            raise _translate(error) from None

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
        try:
            return dict(
                self._custom.replace_namespaced_custom_object_status(
                    resource.group,
                    resource.version,
                    metadata["namespace"],
                    resource.plural,
                    metadata["name"],
                    body,
                )
            )
        except ApiException as error:
            raise _translate(error) from None

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
        try:
            return dict(
                self._custom.patch_namespaced_custom_object(
                    resource.group,
                    resource.version,
                    metadata["namespace"],
                    resource.plural,
                    metadata["name"],
                    patch,
                    _content_type=_MERGE_PATCH,
                )
            )
        except ApiException as error:
            raise _translate(error) from None

    # --- reading whole collections (MyPage's informer) ---
    def list_objects(
        self, resource: meta.Resource, namespace: str | None, *, page_size: int = 500
    ) -> tuple[list[dict[str, Any]], str]:
        """Every object of `resource` in `namespace` (None: the cluster), and the list's resourceVersion.

        Paged, so a large collection never arrives as one huge response; the pages form one consistent
        snapshot (the continue token pins the first page's revision).
        """
        items: list[dict[str, Any]] = []
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
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items, str(page["metadata"]["resourceVersion"])

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
        event = kubernetes.client.CoreV1Event(
            metadata=kubernetes.client.V1ObjectMeta(generate_name=f"{metadata['name']}."),
            involved_object=kubernetes.client.V1ObjectReference(
                api_version=obj.get("apiVersion"),
                kind=obj.get("kind"),
                name=metadata["name"],
                namespace=metadata["namespace"],
                uid=metadata.get("uid"),
                resource_version=metadata.get("resourceVersion"),
            ),
            type=type_,
            reason=reason,
            message=message[:1024],
            source=kubernetes.client.V1EventSource(component="purifier-rental-operator"),
            first_timestamp=None,
            reporting_component="rental.purifier.io/operator",
        )
        with contextlib.suppress(ApiException):
            self._events.create_namespaced_event(metadata["namespace"], event)


class WatchStream:
    """One open watch: iterate for `{"type", "object"}` events; `close()` from any thread ends it.

    BOOKMARK events are passed on (their object carries only the resourceVersion to resume from); an
    ERROR event raises `Gone` for 410 and `RuntimeError` otherwise.
    """

    def __init__(self, response: Any) -> None:
        self._response = response

    def __iter__(self) -> Iterator[dict[str, Any]]:
        pending = b""
        try:
            for chunk in self._response.stream(amt=65536, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield self._event(line)
        finally:
            self.close()

    @staticmethod
    def _event(line: bytes) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(line)
        if event.get("type") == "ERROR":
            status = event.get("object") or {}
            if status.get("code") == 410:
                raise Gone(str(status.get("message", "resource version too old")))
            raise RuntimeError(f"watch error: {status.get('message', status)}")
        return event

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._response.close()
        with contextlib.suppress(Exception):
            self._response.release_conn()


class EventRecorder:
    """Posts Kubernetes Events from a background thread, so recording a step never slows the step."""

    def __init__(self, kube: Kube, *, capacity: int = 10_000) -> None:
        self._kube = kube
        self._queue: queue.Queue[tuple[dict[str, Any], str, str, str] | None] = queue.Queue(capacity)
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout=5)

    def record(self, obj: dict[str, Any], *, type_: str, reason: str, message: str) -> None:
        with contextlib.suppress(queue.Full):  # under overload, drop Events rather than block the saga
            self._queue.put_nowait((obj, type_, reason, message))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            obj, type_, reason, message = item
            self._kube.post_event(obj, type_=type_, reason=reason, message=message)
