"""Names and emails of accounts, from identity's internal API with a service token.

Tokens come from identity's client-credentials endpoint and are reused until shortly before they
expire; account lookups are batched (at most 100 ids a request) and cached for a minute.
"""
from __future__ import annotations

import threading
import time

import requests

from services.tenancy.errors import IdentityUnavailable
from shared.logs import current_request_id

BATCH = 100


class IdentityDirectory:
    def __init__(self, identity_url: str, client_id: str, client_secret: str, cache_ttl: float = 60,
                 timeout: float = 3, session: requests.Session | None = None):
        self.identity_url = identity_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.cache_ttl = cache_ttl
        self.timeout = timeout
        self.http = session or requests.Session()
        self._token: tuple[str, float] | None = None
        self._cache: dict[str, tuple[dict | None, float]] = {}
        self._lock = threading.Lock()

    def _service_token(self) -> str:
        if self._token is not None and self._token[1] > time.monotonic():
            return self._token[0]
        try:
            response = self.http.post(f"{self.identity_url}/v1/oauth/token", timeout=self.timeout, data={
                "grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self.client_secret, "scope": "accounts:read"})
            response.raise_for_status()
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise IdentityUnavailable(f"Identity did not issue a service token ({type(exc).__name__}).") from None
        self._token = (body["access_token"], time.monotonic() + max(10, int(body.get("expires_in", 60)) - 30))
        return self._token[0]

    def _headers(self) -> dict:
        headers = {"Authorization": f"Bearer {self._service_token()}"}
        request_id = current_request_id()
        if request_id:
            headers["X-Request-ID"] = request_id  # one request id across services, in every log
        return headers

    def _fetch(self, ids: list[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            try:
                response = self.http.get(f"{self.identity_url}/internal/v1/accounts", params=[("id", i) for i in chunk],
                                         headers=self._headers(),
                                         timeout=self.timeout)
                if response.status_code == 401:  # token revoked or keys rotated: one fresh token, once
                    self._token = None
                    response = self.http.get(f"{self.identity_url}/internal/v1/accounts",
                                             params=[("id", i) for i in chunk], timeout=self.timeout,
                                             headers=self._headers())
                response.raise_for_status()
                items = response.json()["items"]
            except (requests.RequestException, ValueError, KeyError) as exc:
                raise IdentityUnavailable(
                    f"Identity did not answer an account lookup ({type(exc).__name__}).") from None
            found.update({item["id"]: item for item in items})
        return found

    def accounts(self, ids: list[str]) -> dict[str, dict]:
        """Account documents by id; ids identity does not know are absent."""
        now = time.monotonic()
        with self._lock:
            fresh = {i: hit[0] for i in ids if (hit := self._cache.get(i)) and hit[1] > now}
        missing = sorted(set(ids) - fresh.keys())
        if missing:
            fetched = self._fetch(missing)
            with self._lock:
                for account_id in missing:
                    self._cache[account_id] = (fetched.get(account_id), now + self.cache_ttl)
            fresh.update({i: fetched.get(i) for i in missing})
        return {i: account for i, account in fresh.items() if account is not None}
