"""The floor under a refresh: the least the chosen stack can do to rotate a refresh token, with
nothing of Threshold's request path in it (informational, measured in the same run as identity).

One flask-smorest POST reading the refresh-sized JSON body; on one pooled SQLAlchemy connection (from
`shared.database.make_engine`, so with identity's autocommit engine settings and pool listeners), the
DB-API cursor runs the two statements a rotation cannot do without: the token joined to its session,
its account and any successor, then the INSERT of the next token, which a unique index on
`previous_hash` lets in once; then python-jose signs an ES256 access token with identity's claims, and
the pair goes back as JSON. It does less than identity: no request id, metrics or security headers,
no problem+json, expiry only in the WHERE clause, stored times not parsed, and a reused token only
gets a 401 (identity also ends its session). So it is a floor for identity's design of a refresh
(two statements and an ES256 signature) on this stack. A different design could go lower on
PostgreSQL: one data-modifying CTE instead of two statements would save a round trip.

Served like identity, with `ROTATION_FLOOR_DATABASE_URL`:
`python -m gunicorn --config deploy/gunicorn.conf.py 'bench.rotation_floor:create_app()'`.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, current_app
from flask.views import MethodView
from flask_smorest import Api, Blueprint, abort
from jose import jwk, jwt
from jose.backends.base import Key
from marshmallow import Schema, fields
from sqlalchemy import Boolean, Column, DateTime, Engine, ForeignKey, Index, MetaData, String, Table

from shared.database import make_engine

URL_VARIABLE = "ROTATION_FLOOR_DATABASE_URL"
EXTENSION = "bench.rotation_floor"

metadata = MetaData()
accounts = Table("accounts", metadata, Column("id", String(36), primary_key=True), Column("email", String(320)),
                 Column("email_verified", Boolean), Column("first_name", String(100)), Column("last_name", String(100)))
sessions = Table("sessions", metadata, Column("id", String(36), primary_key=True),
                 Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE")), Column("amr", String(40)),
                 Column("auth_time", DateTime(timezone=True)), Column("revoked_at", DateTime(timezone=True)))
tokens = Table("tokens", metadata, Column("token_hash", String(64), primary_key=True),
               Column("session_id", ForeignKey("sessions.id", ondelete="CASCADE"), index=True),
               Column("expires_at", DateTime(timezone=True)), Column("previous_hash", String(64)))
Index("uq_tokens_previous_hash", tokens.c.previous_hash, unique=True)

READ = ("SELECT t.session_id, s.amr, s.auth_time, s.revoked_at, a.id, a.email, a.email_verified, a.first_name, "
        "a.last_name, n.token_hash FROM tokens t JOIN sessions s ON s.id = t.session_id "
        "JOIN accounts a ON a.id = s.account_id LEFT OUTER JOIN tokens n ON n.previous_hash = t.token_hash "
        "WHERE t.token_hash = %s AND t.expires_at > %s")
INSERT = "INSERT INTO tokens (token_hash, session_id, expires_at, previous_hash) VALUES (%s, %s, %s, %s)"

blp = Blueprint("rotation", __name__, url_prefix="/v1", description="Refresh floor")


class RefreshSchema(Schema):
    refresh_token = fields.String(required=True)


class PairSchema(Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    refresh_token = fields.String()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _sql(statement: str, dialect) -> str:
    return statement.replace("%s", "?") if dialect.paramstyle == "qmark" else statement


def _timestamp(moment: datetime) -> str:
    # ISO text with its offset: PostgreSQL reads it into timestamptz; SQLite compares it as text, which
    # orders it against the times SQLAlchemy stored there to the second, enough for a 30-day expiry.
    return moment.isoformat(sep=" ")


@dataclass(frozen=True)
class Runtime:
    """What the view uses for the life of the process, built once by `create_app`."""

    engine: Engine
    key: Key
    read: str  # READ and INSERT in the driver's parameter style
    insert: str


@blp.route("/rotate")
class Rotation(MethodView):
    @blp.arguments(RefreshSchema())
    @blp.response(200, PairSchema)
    def post(self, body):
        """Rotate a refresh token: read it with its session and account, insert its successor, sign"""
        runtime: Runtime = current_app.extensions[EXTENSION]
        now = datetime.now(UTC)
        token_hash = _digest(body["refresh_token"])
        next_token = secrets.token_urlsafe(32)
        connection = runtime.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(runtime.read, (token_hash, _timestamp(now)))
                row = cursor.fetchone()
                if row is None or row[3] is not None or row[9] is not None:
                    abort(401)
                try:
                    cursor.execute(runtime.insert, (_digest(next_token), row[0],
                                                    _timestamp(now + timedelta(days=30)), token_hash))
                except runtime.engine.dialect.loaded_dbapi.IntegrityError:
                    abort(401)  # a concurrent rotation of the same token got in first (the bench makes none)
            finally:
                cursor.close()
        finally:
            connection.close()
        issued = int(now.timestamp())
        claims = {"iss": "http://127.0.0.1", "sub": row[4], "aud": "threshold", "exp": issued + 900, "iat": issued,
                  "jti": str(uuid.uuid4()), "sid": row[0], "email": row[5], "email_verified": bool(row[6]),
                  "given_name": row[7], "family_name": row[8], "amr": row[1].split(),
                  "auth_time": issued}
        access = jwt.encode(claims, runtime.key, algorithm="ES256", headers={"kid": "floor", "typ": "at+jwt"})
        return {"access_token": access, "token_type": "Bearer", "expires_in": 900, "refresh_token": next_token}


def seed(database_url: str, count: int) -> list[str]:
    """The schema, and `count` accounts each with a session and a live refresh token; the tokens."""
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    issued = [secrets.token_urlsafe(32) for _ in range(count)]
    try:
        metadata.create_all(engine)
        with engine.begin() as connection:
            for number, token in enumerate(issued):
                account, session = str(uuid.uuid4()), str(uuid.uuid4())
                connection.execute(accounts.insert().values(id=account, email=f"floor-{number}@example.com",
                                                            email_verified=True, first_name="Floor", last_name="Bench"))
                connection.execute(sessions.insert().values(id=session, account_id=account, amr="pwd", auth_time=now))
                connection.execute(tokens.insert().values(token_hash=_digest(token), session_id=session,
                                                          expires_at=now + timedelta(days=30)))
    finally:
        engine.dispose()
    return issued


def create_app() -> Flask:
    engine = make_engine(os.environ[URL_VARIABLE], autocommit=True)
    private = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    app = Flask("rotation-floor")
    app.extensions[EXTENSION] = Runtime(engine, jwk.construct(private, "ES256"), _sql(READ, engine.dialect),
                                      _sql(INSERT, engine.dialect))
    app.config.update(API_TITLE="Refresh floor", API_VERSION="1.0", OPENAPI_VERSION="3.0.3")
    Api(app).register_blueprint(blp)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app
