"""Browser sessions kept server-side: the cookie holds only an opaque random id.

The session's contents (the account's tokens, a pending sign-in, the CSRF secret) live encrypted in
web's database, so no token ever reaches the browser. `regenerate()` gives the session a new id (on
sign-in and sign-out) so an id planted before sign-in is worthless after it.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import sessionmaker
from werkzeug.datastructures import CallbackDict

from services.web.autocommit import Reads
from services.web.models import BrowserSession

COOKIE = "threshold_session"


def _digest(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode()).hexdigest()


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, initial: dict | None = None, cookie_value: str | None = None):
        def on_update(this):
            this.modified = True

        super().__init__(initial or {}, on_update)
        self.cookie_value = cookie_value
        self.previous_value: str | None = None
        self.modified = False

    def regenerate(self) -> None:
        """A new id for the same contents; the old row is deleted when the response is saved."""
        self.previous_value = self.previous_value or self.cookie_value
        self.cookie_value = None
        self.modified = True


class SessionStore:
    """Reads and writes encrypted session rows."""

    def __init__(self, session_factory: sessionmaker, *, secret_key: str, ttl: int, clock: Callable[[], datetime],
                 autocommit_engine: Engine | None = None):
        """`autocommit_engine` reads sessions (`autocommit.Reads`: a single SELECT needs no transaction);
        by default the session factory's engine does."""
        self.session_factory = session_factory
        self.reads = Reads(autocommit_engine or session_factory.kw["bind"])
        self.fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"web-session:" + secret_key.encode()).digest()))
        self.ttl = ttl
        self.clock = clock

    def load(self, cookie_value: str) -> dict | None:
        row = self.reads.session(_digest(cookie_value))
        if row is None or row.expires_at <= self.clock():
            return None
        try:
            return json.loads(self.fernet.decrypt(row.data.encode()))
        except InvalidToken:  # SECRET_KEY changed: the session is gone
            return None

    def save(self, cookie_value: str, data: dict) -> None:
        now = self.clock()
        blob = self.fernet.encrypt(json.dumps(data).encode()).decode()
        with self.session_factory.begin() as db:
            row = db.get(BrowserSession, _digest(cookie_value))
            if row is None:
                db.execute(delete(BrowserSession).where(BrowserSession.expires_at <= now))
                db.add(BrowserSession(id=_digest(cookie_value), data=blob, expires_at=now + timedelta(seconds=self.ttl),
                                      updated_at=now))
            else:
                row.data, row.expires_at, row.updated_at = blob, now + timedelta(seconds=self.ttl), now

    def update_locked(self, cookie_value: str, change: Callable[[dict], dict]) -> dict | None:
        """Load the session under a row lock, let `change` turn its data into new data, store that.

        Two requests of one browser that both find the access token expired must not both spend the
        refresh token (identity would see a reuse and end the session): the second waits for the lock,
        then sees the tokens the first one stored.
        """
        with self.session_factory.begin() as db:
            row = db.execute(select(BrowserSession).where(BrowserSession.id == _digest(cookie_value))
                             .with_for_update()).scalar_one_or_none()
            if row is None:
                return None
            try:
                data = change(json.loads(self.fernet.decrypt(row.data.encode())))
            except InvalidToken:
                return None
            row.data = self.fernet.encrypt(json.dumps(data).encode()).decode()
            return data

    def delete(self, cookie_value: str) -> None:
        with self.session_factory.begin() as db:
            db.execute(delete(BrowserSession).where(BrowserSession.id == _digest(cookie_value)))


class ServerSessionInterface(SessionInterface):
    """Flask's session, backed by `SessionStore`; the cookie is HttpOnly, SameSite=Lax, Secure over https."""

    def __init__(self, store: SessionStore, secure: bool):
        self.store = store
        self.secure = secure

    def open_session(self, app, request) -> ServerSession:
        value = request.cookies.get(COOKIE, "")
        if value and len(value) <= 64:
            data = self.store.load(value)
            if data is not None:
                return ServerSession(data, value)
        return ServerSession()

    def save_session(self, app, session, response) -> None:  # `session` is the ServerSession opened above
        if session.previous_value:
            self.store.delete(session.previous_value)
        if not session:
            if session.cookie_value:
                self.store.delete(session.cookie_value)
            if session.cookie_value or session.previous_value:
                response.delete_cookie(COOKIE, path="/", secure=self.secure, httponly=True, samesite="Lax")
            return
        if not session.modified and session.cookie_value:
            return
        session.cookie_value = session.cookie_value or secrets.token_urlsafe(32)
        self.store.save(session.cookie_value, dict(session))
        response.set_cookie(COOKIE, session.cookie_value, max_age=self.store.ttl, path="/", secure=self.secure,
                            httponly=True, samesite="Lax")
        response.vary.add("Cookie")
