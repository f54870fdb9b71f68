"""Identity's and tenancy's HTTP APIs as web calls them.

Every call forwards the request id and the browser's address (`X-Forwarded-For`, which identity
trusts with `PROXY_HOPS=1`), so per-address limits still key on the person and not on web. A
problem+json answer becomes an `UpstreamError` the page turns into words; anything else is an
`UpstreamUnavailable`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import requests


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
    """One upstream service: JSON in, JSON out, problem+json as `UpstreamError`."""

    def __init__(self, base_url: str, timeout: int):
        self.base_url = base_url
        self.timeout = timeout
        # One session: it keeps connections alive wherever the upstream server does.
        self.http = requests.Session()
        # What requests would read from the environment on every call (walking os.environ twice, a tenth
        # of a page's CPU), read once: the proxy for this base URL (NO_PROXY honoured) and the CA bundle.
        self.http.trust_env = False
        self.proxies = requests.utils.get_environ_proxies(base_url)
        self.verify: str | bool = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True

    def call(self, method: str, path: str, *, json: dict | None = None, token: str | None = None,
             headers: dict | None = None, params=None, data: dict | None = None) -> dict:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        try:
            response = self.http.request(method, self.base_url + path, json=json, data=data, headers=sent,
                                         params=params, timeout=self.timeout, allow_redirects=False,
                                         proxies=self.proxies, verify=self.verify)
        except requests.RequestException:
            raise UpstreamUnavailable() from None
        if response.status_code < 400:
            return response.json() if response.content else {}
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 500 or not isinstance(body, dict) or "code" not in body:
            raise UpstreamUnavailable()
        retry_after = response.headers.get("Retry-After", "")
        raise UpstreamError(response.status_code, body["code"], body.get("detail", ""), body.get("errors") or {},
                            int(retry_after) if retry_after.isdigit() else None)
