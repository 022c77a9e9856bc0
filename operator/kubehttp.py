"""Requests to the Kubernetes API through libcurl (pycurl): the saga's writes, reads and Events.

Why not the `kubernetes` client's own transport: under a burst the machine is shared by the API
server and the operator, so every CPU millisecond the operator spends on a request is one the API
server cannot spend on the next write. Through the client, one request cost about 0.5 ms of CPU, most
of it in Python under the GIL (urllib3's bookkeeping, `http.client` and the `email` header parser, the
`ssl` wrappers): a quarter of the operator's CPU with some twenty requests per rental. libcurl does
the whole exchange in C with the GIL released, about 0.18 ms of CPU per request including the JSON
decoding (orjson).

What is kept from the client: its `Configuration` decides everything (server, CA, client
certificate, bearer token with its refresh hook, whether to verify), so in-cluster credentials and
kubeconfigs work as before. Connection settings this transport does not implement (an HTTP proxy, a
`tls-server-name`, a pinned hostname) make `for_configuration` return None, and `kubeapi.Kube` then
goes through the client as before.

One curl handle per thread (a handle is not thread-safe, and each keeps its connection alive), no
retries (the controllers retry, with backoff, and a retried POST is their decision), HTTP/1.1 as the
client spoke, and libcurl's signal-based timeouts off (NOSIGNAL), as threads require.
"""

from __future__ import annotations

import dataclasses
import http
import threading
from typing import Final

import kubernetes
import pycurl

__all__ = ["CurlTransport", "Response", "TransportError"]

_USER_AGENT: Final = "purifier-rental-operator"


class TransportError(Exception):
    """No answer from the API server (refused, reset, timed out, TLS failure): worth a retry later."""


@dataclasses.dataclass(frozen=True, slots=True)
class Response:
    status: int
    reason: str
    body: bytes


class CurlTransport:
    def __init__(
        self,
        *,
        host: str,
        ca_file: str | None,
        cert_file: str | None,
        key_file: str | None,
        verify: bool,
        configuration: kubernetes.client.Configuration | None = None,
        connect_timeout: float = 5.0,
        total_timeout: float = 30.0,
    ) -> None:
        self._host = host.rstrip("/")
        self._ca_file = ca_file
        self._cert_file = cert_file
        self._key_file = key_file
        self._verify = verify
        self._configuration = configuration  # for the bearer token, read per request (it may rotate)
        self._connect_timeout_ms = int(connect_timeout * 1000)
        self._total_timeout_ms = int(total_timeout * 1000)
        self._local = threading.local()

    @classmethod
    def for_configuration(
        cls, configuration: kubernetes.client.Configuration, *, connect_timeout: float, total_timeout: float
    ) -> CurlTransport | None:
        """A transport speaking for `configuration`, or None if it needs what this one lacks."""
        if configuration.proxy or configuration.tls_server_name or configuration.assert_hostname:
            return None
        return cls(
            host=configuration.host,
            ca_file=configuration.ssl_ca_cert,
            cert_file=configuration.cert_file,
            key_file=configuration.key_file,
            verify=bool(configuration.verify_ssl),
            configuration=configuration,
            connect_timeout=connect_timeout,
            total_timeout=total_timeout,
        )

    def request(self, method: str, path: str, *, body: bytes | None, content_type: str) -> Response:
        curl = self._handle()
        headers = ["Accept: application/json", "Expect:"]  # "Expect:" turns off 100-continue waits
        token = self._bearer()
        if token:
            headers.append(f"Authorization: {token}")
        curl.setopt(pycurl.URL, self._host + path)
        if body is None:
            curl.setopt(pycurl.HTTPGET, 1)
        else:
            headers.append(f"Content-Type: {content_type}")
            curl.setopt(pycurl.POSTFIELDS, body)
        curl.setopt(pycurl.CUSTOMREQUEST, method)
        curl.setopt(pycurl.HTTPHEADER, headers)
        chunks: list[bytes] = []
        curl.setopt(pycurl.WRITEFUNCTION, chunks.append)
        try:
            curl.perform()
        except pycurl.error as error:
            code, message = error.args if len(error.args) == 2 else (0, str(error))
            # A failed exchange may leave the handle's connection half-used: start the next afresh.
            self._drop()
            raise TransportError(f"{method} {path}: {message} (curl error {code})") from None
        status = int(curl.getinfo(pycurl.RESPONSE_CODE))
        return Response(status=status, reason=_reason(status), body=b"".join(chunks))

    def _bearer(self) -> str | None:
        if self._configuration is None:
            return None
        setting = self._configuration.auth_settings().get("BearerToken")
        value = setting.get("value") if setting else None
        return str(value) if value else None

    def _handle(self) -> pycurl.Curl:
        curl: pycurl.Curl | None = getattr(self._local, "curl", None)
        if curl is None:
            curl = pycurl.Curl()
            curl.setopt(pycurl.NOSIGNAL, 1)
            curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
            curl.setopt(pycurl.USERAGENT, _USER_AGENT)
            curl.setopt(pycurl.CONNECTTIMEOUT_MS, self._connect_timeout_ms)
            curl.setopt(pycurl.TIMEOUT_MS, self._total_timeout_ms)
            curl.setopt(pycurl.FOLLOWLOCATION, 0)
            curl.setopt(pycurl.TCP_KEEPALIVE, 1)
            curl.setopt(pycurl.PROXY, "")  # never a proxy from the environment: the configuration decides
            curl.setopt(pycurl.SSL_VERIFYPEER, 1 if self._verify else 0)
            curl.setopt(pycurl.SSL_VERIFYHOST, 2 if self._verify else 0)
            if self._ca_file:
                curl.setopt(pycurl.CAINFO, self._ca_file)
            if self._cert_file:
                curl.setopt(pycurl.SSLCERT, self._cert_file)
            if self._key_file:
                curl.setopt(pycurl.SSLKEY, self._key_file)
            self._local.curl = curl
        return curl

    def _drop(self) -> None:
        curl: pycurl.Curl | None = getattr(self._local, "curl", None)
        if curl is not None:
            curl.close()
            self._local.curl = None


def _reason(status: int) -> str:
    """The standard reason phrase ('Conflict' for 409); the API server sends exactly these."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""
