"""What web's page handlers share for the life of the process, and the signed-in account's tokens."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from flask import current_app, g, request, session

from services.web.sessions import ServerSession, SessionStore
from services.web.settings import Settings
from services.web.upstream import Api, UpstreamError, UpstreamUnavailable

EXTENSION = "threshold.web"
#: Refresh this many seconds before the access token expires, so a call never carries a dying token.
REFRESH_MARGIN = 30


class SignedOut(Exception):
    """The page needs a signed-in account and the session has none (or identity ended it)."""


class ServiceToken:
    """Web's own token for identity's internal routes (client credentials, scope `auth-requests:complete`),
    reused until REFRESH_MARGIN seconds before it expires."""

    SCOPE = "auth-requests:complete"

    def __init__(self, identity: Api, client_id: str, client_secret: str):
        self.identity = identity
        self.credentials = {"grant_type": "client_credentials", "client_id": client_id,
                            "client_secret": client_secret, "scope": self.SCOPE}
        self.value, self.expires_at = "", 0.0
        self.lock = threading.Lock()

    def __call__(self) -> str:
        with self.lock:
            if self.expires_at - REFRESH_MARGIN <= time.time():
                try:
                    answer = self.identity.call("POST", "/v1/oauth/token", data=self.credentials)
                except UpstreamError as error:  # the operator's setting, not the person's doing
                    current_app.logger.error("identity refused web's client credentials (WEB_CLIENT_ID, "
                                             "WEB_CLIENT_SECRET, SERVICE_CLIENTS): %s", error.code)
                    raise UpstreamUnavailable() from None
                self.value, self.expires_at = answer["access_token"], time.time() + int(answer["expires_in"])
            return self.value


@dataclass(kw_only=True)
class Runtime:
    settings: Settings
    identity: Api
    tenancy: Api
    store: SessionStore
    clock: Callable[[], datetime]
    service_token: ServiceToken


def runtime() -> Runtime:
    return current_app.extensions[EXTENSION]


def _forwarded() -> dict:
    return {"X-Request-ID": g.get("request_id", ""), "X-Forwarded-For": request.remote_addr or "",
            "User-Agent": request.user_agent.string}  # identity records it on the sessions it opens


def identity(method: str, path: str, **kwargs) -> dict:
    return runtime().identity.call(method, path, headers=_forwarded(), **kwargs)


def tenancy(method: str, path: str, **kwargs) -> dict:
    """A tenancy call as the signed-in account (raises SignedOut when there is none)."""
    return runtime().tenancy.call(method, path, headers=_forwarded(), token=access_token(), **kwargs)


def tenancy_public(method: str, path: str, **kwargs) -> dict:
    """A tenancy call without a bearer token (what a mail link's token proves by itself)."""
    return runtime().tenancy.call(method, path, headers=_forwarded(), **kwargs)


def identity_as_service(method: str, path: str, **kwargs) -> dict:
    return runtime().identity.call(method, path, headers=_forwarded(), token=runtime().service_token(), **kwargs)


def identity_as_account(method: str, path: str, **kwargs) -> dict:
    return runtime().identity.call(method, path, headers=_forwarded(), token=access_token(), **kwargs)


def _current() -> ServerSession:
    """The request's session itself (flask's `session` is a proxy, typed as the base mixin)."""
    return cast(Any, session)._get_current_object()


def sign_in(tokens: dict) -> None:
    """Keep a token pair in the session (under a new session id) and the account it belongs to."""
    _current().regenerate()
    session.pop("mfa", None)
    session["auth"] = _auth(tokens)
    session["account"] = identity_as_account("GET", "/v1/me")


def sign_out() -> None:
    auth = session.get("auth")
    if auth:
        try:
            identity("POST", "/v1/sessions/revoke", json={"refresh_token": auth["refresh_token"]})
        except Exception:  # noqa: BLE001 - the browser is signed out whatever identity answers
            pass
    session.clear()
    _current().regenerate()


def signed_in() -> bool:
    return "auth" in session


def _auth(tokens: dict) -> dict:
    return {"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"],
            "expires_at": time.time() + int(tokens["expires_in"])}


def access_token() -> str:
    auth = session.get("auth")
    if not auth:
        raise SignedOut()
    if auth["expires_at"] - REFRESH_MARGIN > time.time():
        return auth["access_token"]

    def refresh(data: dict) -> dict:
        stored = data.get("auth")
        if not stored:
            raise SignedOut()
        if stored["expires_at"] - REFRESH_MARGIN > time.time():  # another request refreshed meanwhile
            return data
        try:
            tokens = identity("POST", "/v1/tokens/refresh", json={"refresh_token": stored["refresh_token"]})
        except UpstreamError:
            data.pop("auth", None)
            data.pop("account", None)
            return data
        return {**data, "auth": _auth(tokens)}

    cookie_value = _current().cookie_value
    data = runtime().store.update_locked(cookie_value, refresh) if cookie_value else None
    if not data or "auth" not in data:
        session.clear()
        raise SignedOut()
    dict.update(_current(), data)  # the store has it already: no second write
    return data["auth"]["access_token"]
