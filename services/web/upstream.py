"""Identity's and tenancy's HTTP APIs as web calls them.

Every call forwards the request id and the browser's address (`X-Forwarded-For`, which identity
trusts with `PROXY_HOPS=1`), so per-address limits still key on the person and not on web. A
problem+json answer becomes an `UpstreamError` the page turns into words; anything else is an
`UpstreamUnavailable`.
"""
from __future__ import annotations

import http.client
import json as json_module
import os
import ssl
import threading
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

#: What a call that could not be made raises: the connection refused, reset or timed out, or not HTTP.
TRANSPORT_ERRORS = (OSError, http.client.HTTPException)


class UpstreamUnavailable(Exception):
    message = "The service is not answering. Try again in a moment."


@dataclass
class UpstreamError(Exception):
    status: int
    code: str
    detail: str
    errors: dict = field(default_factory=dict)
    retry_after: int | None = None


class Api:
    """One upstream service: JSON in, JSON out, problem+json as `UpstreamError`.

    Calls go straight through `http.client` on one connection per thread, kept open while the upstream
    server keeps it alive (gunicorn's sync workers close it after each answer). A page makes one to a
    few of these calls, and `requests` spent three times the CPU of the call itself on its own layers
    (a third of the workspace page). HTTPS verifies against the system's CAs, or REQUESTS_CA_BUNDLE /
    CURL_CA_BUNDLE as before; no HTTP proxy is used between services."""

    def __init__(self, base_url: str, timeout: int):
        self.base_url = base_url
        self.timeout = timeout
        parts = urlsplit(base_url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.tls = (ssl.create_default_context(cafile=os.environ.get("REQUESTS_CA_BUNDLE")
                                               or os.environ.get("CURL_CA_BUNDLE") or None) if self.https else None)
        self._local = threading.local()

    def _connect(self) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.tls)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _exchange(self, method: str, target: str, body: bytes | None, headers: dict) -> tuple[int, str, bytes]:
        """(status, Retry-After, body); a kept-alive connection the server dropped meanwhile is replaced once."""
        connection = getattr(self._local, "connection", None)
        reused = connection is not None
        for attempt in (1, 2):
            if connection is None:
                connection = self._local.connection = self._connect()
            try:
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except TRANSPORT_ERRORS:
                connection.close()
                connection = self._local.connection = None
                if reused and attempt == 1:  # the server closed an idle connection: it never saw this request
                    continue
                raise
            if response.will_close:
                connection.close()
                self._local.connection = None
            return response.status, response.getheader("Retry-After", ""), payload
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, *, json: dict | None = None, token: str | None = None,
             headers: dict | None = None, params=None, data: dict | None = None) -> dict:
        sent = {"Accept": "application/json", **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        body = None
        if json is not None:
            body = json_module.dumps(json).encode()
            sent["Content-Type"] = "application/json"
        elif data is not None:
            body = urlencode(data).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        target = self.prefix + path + (f"?{urlencode(params)}" if params else "")
        try:
            status, retry_after, payload = self._exchange(method, target, body, sent)
        except TRANSPORT_ERRORS:
            raise UpstreamUnavailable() from None
        if status < 400:
            return json_module.loads(payload) if payload else {}
        try:
            problem = json_module.loads(payload)
        except ValueError:
            problem = {}
        if status >= 500 or not isinstance(problem, dict) or "code" not in problem:
            raise UpstreamUnavailable()
        raise UpstreamError(status, problem["code"], problem.get("detail", ""), problem.get("errors") or {},
                            int(retry_after) if retry_after.isdigit() else None)
