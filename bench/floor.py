"""The floors under identity's token endpoints: the least the chosen stack can do for a sign-in, a refresh,
a client credentials grant and an authorization code exchange, with nothing of Threshold's request path in
it (informational, measured in the same runs as identity and the peers).

Each is one flask-smorest POST; on one pooled SQLAlchemy connection (from `shared.database.make_engine`,
so with identity's autocommit engine settings and pool listeners) the DB-API cursor runs only the
statements the operation cannot do without; python-jose's ES256 key signs the tokens (through
`shared.jwt.mint`, the way identity mints every token); the answer is JSON.

- `POST /v1/sign-in` (identity's `POST /v1/sessions`): the account's id, argon2id hash and claims by its
  email in one SELECT; `passwords.verify`, as identity checks a password (on its hashing thread, which
  keeps argon2id's block allocated while sign-ins come: on the request thread of this gunicorn worker the
  same floor did 0.85-0.89 of the verify rate, against 0.92-0.96 on the hashing thread, in one run); an
  access token with identity's claims.
  No session or refresh token is written and no guess is counted (identity does both: four write
  transactions in all, with its per-address limit), so this is the floor of any password sign-in that
  answers with a signed token on this stack, the one fastapi-users' login also does.
- `POST /v1/rotate` (identity's `POST /v1/tokens/refresh`): the token joined to its session, its account
  and any successor, then the INSERT of the next token, which a unique index on `previous_hash` lets in
  once; an access token with identity's claims.
- `POST /v1/client-token` (identity's `POST /v1/oauth/token`, client_credentials): HTTP Basic client
  auth; one SELECT of the client's secret hash and scopes; a constant-time compare of the secret's
  SHA-256 (what identity stores for service clients); an access token with identity's service claims.
- `POST /v1/exchange` (identity's `POST /oauth2/token`, authorization_code): HTTP Basic client auth
  against the one relying party, held in memory as identity holds those of OIDC_CLIENTS (the secret's
  SHA-256, compared in constant time); one `UPDATE ... RETURNING` spends the code (of this client,
  unused, unexpired) and returns what the code was issued for; the redirect_uri and the PKCE S256
  verifier are checked; one INSERT writes the grant and its refresh token as one row; an access token
  and an ID token (`at_hash`, `nonce`, `sid`, `amr`, `acr`) are signed.

What they do less than identity: no request id, metrics, security headers or guess throttling; errors are
flask-smorest's JSON, not RFC 6749's or problem+json; werkzeug's Basic parsing (no form-urldecoding of the
id and secret); no authlib; expiry only in the WHERE clause and stored times not parsed; a reused refresh
token or code only gets refused (identity also ends the session or revokes the grant); the exchange spends
the code and writes the grant with its refresh token as one row in two statements, where identity spends
the code, reads the account's claims, inserts a grant, records it on the code's request and inserts the
refresh token (five statements in one transaction), and knows no scope that opens account claims (the
bench asks for `openid offline_access`, which opens none). So each is a floor for that operation with
identity's checks and tokens, in the fewest statements it needs, on this stack; a different design could
go lower on PostgreSQL (one data-modifying CTE instead of two statements saves a round trip).

Served like identity, with `FLOOR_DATABASE_URL`:
`python -m gunicorn --config deploy/gunicorn.conf.py 'bench.floor:create_app()'`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, current_app, request
from flask.views import MethodView
from flask_smorest import Api, Blueprint, abort
from jose import jwk
from jose.backends.base import Key
from marshmallow import Schema, fields, validate
from sqlalchemy import Boolean, Column, DateTime, Engine, ForeignKey, Index, Integer, MetaData, String, Table, insert
from werkzeug.exceptions import Unauthorized

from services.identity import passwords
from shared.database import make_engine
from shared.jwt import ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, mint
from shared.opaque_tokens import digest

URL_VARIABLE = "FLOOR_DATABASE_URL"
EXTENSION = "bench.floor"
ISSUER, AUDIENCE, KID = "http://127.0.0.1", "threshold", "floor"
ACCESS_TTL, REFRESH_TTL, CODE_TTL = 900, timedelta(days=30), timedelta(seconds=60)
SERVICE, SERVICE_SECRET, SERVICE_SCOPES = "floor-service", "floor-service-secret-0123456789", "accounts:read"
RP, RP_SECRET, REDIRECT_URI = "floor-rp", "floor-rp-secret-0123456789-abcdefghij", "http://127.0.0.1:9/cb"
SCOPE = "openid offline_access"

metadata = MetaData()
accounts = Table("accounts", metadata, Column("id", String(36), primary_key=True),
                 Column("email", String(320), unique=True), Column("email_verified", Boolean),
                 Column("first_name", String(100)), Column("last_name", String(100)),
                 Column("password_hash", String(200)))
sessions = Table("sessions", metadata, Column("id", String(36), primary_key=True),
                 Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE")), Column("amr", String(40)),
                 Column("auth_time", DateTime(timezone=True)), Column("revoked_at", DateTime(timezone=True)))
tokens = Table("tokens", metadata, Column("token_hash", String(64), primary_key=True),
               Column("session_id", ForeignKey("sessions.id", ondelete="CASCADE"), index=True),
               Column("expires_at", DateTime(timezone=True)), Column("previous_hash", String(64)))
Index("uq_tokens_previous_hash", tokens.c.previous_hash, unique=True)
service_clients = Table("service_clients", metadata, Column("client_id", String(100), primary_key=True),
                        Column("secret_hash", String(64)), Column("scopes", String(500)))
codes = Table("codes", metadata, Column("code_hash", String(64), primary_key=True), Column("client_id", String(100)),
              Column("account_id", String(36)), Column("session_id", ForeignKey("sessions.id", ondelete="CASCADE")),
              Column("redirect_uri", String(500)), Column("scope", String(200)), Column("nonce", String(500)),
              Column("code_challenge", String(64)), Column("amr", String(40)), Column("auth_time", Integer),
              Column("expires_at", DateTime(timezone=True)), Column("used_at", DateTime(timezone=True)))
grants = Table("grants", metadata, Column("token_hash", String(64), primary_key=True), Column("id", String(36)),
               Column("client_id", String(100)), Column("account_id", String(36)),
               Column("session_id", ForeignKey("sessions.id", ondelete="CASCADE")), Column("scope", String(200)),
               Column("code_hash", String(64)), Column("expires_at", DateTime(timezone=True)))

ACCOUNT = "SELECT id, password_hash, email_verified, first_name, last_name FROM accounts WHERE email = %s"
READ = ("SELECT t.session_id, s.amr, s.auth_time, s.revoked_at, a.id, a.email, a.email_verified, a.first_name, "
        "a.last_name, n.token_hash FROM tokens t JOIN sessions s ON s.id = t.session_id "
        "JOIN accounts a ON a.id = s.account_id LEFT OUTER JOIN tokens n ON n.previous_hash = t.token_hash "
        "WHERE t.token_hash = %s AND t.expires_at > %s")
INSERT = "INSERT INTO tokens (token_hash, session_id, expires_at, previous_hash) VALUES (%s, %s, %s, %s)"
CLIENT = "SELECT secret_hash, scopes FROM service_clients WHERE client_id = %s"
SPEND = ("UPDATE codes SET used_at = %s WHERE code_hash = %s AND client_id = %s AND used_at IS NULL "
         "AND expires_at > %s RETURNING account_id, session_id, redirect_uri, scope, nonce, code_challenge, amr, "
         "auth_time")
GRANT = ("INSERT INTO grants (token_hash, id, client_id, account_id, session_id, scope, code_hash, expires_at) "
         "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)")
NO_CLIENT = hashlib.sha256(b"no such client").hexdigest()

blp = Blueprint("floor", __name__, url_prefix="/v1", description="Token endpoint floors")


class SignInSchema(Schema):
    email = fields.String(required=True)
    password = fields.String(required=True)


class RefreshSchema(Schema):
    refresh_token = fields.String(required=True)


class ClientCredentialsSchema(Schema):
    grant_type = fields.String(required=True, validate=validate.Equal("client_credentials"))
    scope = fields.String()


class ExchangeSchema(Schema):
    grant_type = fields.String(required=True, validate=validate.Equal("authorization_code"))
    code = fields.String(required=True)
    redirect_uri = fields.String(required=True)
    code_verifier = fields.String(required=True)


class TokenSchema(Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    scope = fields.String()
    refresh_token = fields.String()
    id_token = fields.String()


def driver_sql(statement: str, dialect) -> str:
    """`statement`, written with `%s` placeholders, in the driver's parameter style."""
    return statement.replace("%s", "?") if dialect.paramstyle == "qmark" else statement


def _timestamp(moment: datetime) -> str:
    # ISO text with its offset: PostgreSQL reads it into timestamptz; SQLite compares it as text, which
    # orders it against the times SQLAlchemy stored there to the second, enough for these expiries.
    return moment.isoformat(sep=" ")


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class Runtime:
    """What the views use for the life of the process, built once by `create_app`."""

    engine: Engine
    key: Key
    statements: dict[str, str]  # ACCOUNT, READ, INSERT, CLIENT, SPEND and GRANT in the driver's parameter style
    rp_secret_hash: str  # the relying party's, as identity holds one of OIDC_CLIENTS


def _runtime() -> Runtime:
    return current_app.extensions[EXTENSION]


@contextmanager
def cursor_of(engine: Engine) -> Iterator:
    """A DB-API cursor on one pooled connection, for the statements of one request."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
    finally:
        connection.close()


def _client() -> tuple[str, str]:
    """The client id and secret of the Basic header; 401 without one."""
    credentials = request.authorization
    if credentials is None or credentials.type != "basic" or not credentials.username:
        raise Unauthorized()  # answered as JSON by flask-smorest, as `abort(401)` is
    return credentials.username, credentials.password or ""


def _token(runtime: Runtime, subject: str, audience: str, issued_at: datetime, claims: dict,
           token_type: str = ACCESS_TOKEN_TYPE) -> str:
    """A token of the floor's key, through identity's own `mint` (the registered claims, then `claims`)."""
    return mint(key=runtime.key, kid=KID, algorithm="ES256", issuer=ISSUER, subject=subject, audience=audience,
                issued_at=issued_at, lifetime=ACCESS_TTL, claims=claims, token_type=token_type)


@blp.route("/sign-in")
class SignIn(MethodView):
    @blp.arguments(SignInSchema())
    @blp.response(200, TokenSchema)
    def post(self, body):
        """Sign in: read the account by its email, verify the password's argon2id hash, sign"""
        runtime = _runtime()
        with cursor_of(runtime.engine) as cursor:
            cursor.execute(runtime.statements["ACCOUNT"], (body["email"],))
            row = cursor.fetchone()
        if row is None or not row[2] or row[1] is None:
            abort(401)  # unknown, not verified or seeded without a password (the bench signs in with none)
        if not passwords.verify(row[1], body["password"]):
            abort(401)
        now = datetime.now(UTC)
        claims = {"sid": str(uuid.uuid4()), "email": body["email"], "email_verified": True, "given_name": row[3],
                  "family_name": row[4], "amr": ["pwd"], "auth_time": int(now.timestamp())}
        return {"access_token": _token(runtime, row[0], AUDIENCE, now, claims), "token_type": "Bearer",
                "expires_in": ACCESS_TTL}


@blp.route("/rotate")
class Rotation(MethodView):
    @blp.arguments(RefreshSchema())
    @blp.response(200, TokenSchema)
    def post(self, body):
        """Rotate a refresh token: read it with its session and account, insert its successor, sign"""
        runtime = _runtime()
        now = datetime.now(UTC)
        token_hash = digest(body["refresh_token"])
        next_token = secrets.token_urlsafe(32)
        with cursor_of(runtime.engine) as cursor:
            cursor.execute(runtime.statements["READ"], (token_hash, _timestamp(now)))
            row = cursor.fetchone()
            if row is None or row[3] is not None or row[9] is not None:
                abort(401)
            try:
                cursor.execute(runtime.statements["INSERT"], (digest(next_token), row[0],
                                                              _timestamp(now + REFRESH_TTL), token_hash))
            except runtime.engine.dialect.loaded_dbapi.IntegrityError:
                abort(401)  # a concurrent rotation of the same token got in first (the bench makes none)
        claims = {"sid": row[0], "email": row[5], "email_verified": bool(row[6]), "given_name": row[7],
                  "family_name": row[8], "amr": row[1].split(), "auth_time": int(now.timestamp())}
        return {"access_token": _token(runtime, row[4], AUDIENCE, now, claims), "token_type": "Bearer",
                "expires_in": ACCESS_TTL, "refresh_token": next_token}


@blp.route("/client-token")
class ClientToken(MethodView):
    @blp.arguments(ClientCredentialsSchema(), location="form")
    @blp.response(200, TokenSchema)
    def post(self, body):
        """A client credentials token: read the client, compare its secret's SHA-256, sign"""
        runtime = _runtime()
        client_id, secret = _client()
        with cursor_of(runtime.engine) as cursor:
            cursor.execute(runtime.statements["CLIENT"], (client_id,))
            row = cursor.fetchone()
        if not hmac.compare_digest(digest(secret), row[0] if row else NO_CLIENT) or row is None:
            abort(401)
        allowed = set(row[1].split())
        requested = set(body["scope"].split()) if "scope" in body else allowed
        if not requested <= allowed:
            abort(400)
        granted = " ".join(sorted(requested))
        access = _token(runtime, client_id, AUDIENCE, datetime.now(UTC), {"client_id": client_id, "scope": granted})
        return {"access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TTL, "scope": granted}


@blp.route("/exchange")
class Exchange(MethodView):
    @blp.arguments(ExchangeSchema(), location="form")
    @blp.response(200, TokenSchema)
    def post(self, body):
        """Exchange an authorization code: spend it, check redirect_uri and PKCE, write the grant, sign two"""
        runtime = _runtime()
        client_id, secret = _client()
        if client_id != RP or not hmac.compare_digest(digest(secret), runtime.rp_secret_hash):
            abort(401)
        now = datetime.now(UTC)
        code_hash, refresh_token, grant_id = digest(body["code"]), secrets.token_urlsafe(32), str(uuid.uuid4())
        with cursor_of(runtime.engine) as cursor:
            cursor.execute(runtime.statements["SPEND"], (_timestamp(now), code_hash, client_id, _timestamp(now)))
            rows = cursor.fetchall()  # SQLite finishes an UPDATE ... RETURNING once it is read to the end
            if not rows:
                abort(400)  # no such code of this client, spent, or expired
            account, session, redirect_uri, scope, nonce, challenge, amr, auth_time = rows[0]
            if redirect_uri != body["redirect_uri"] or not hmac.compare_digest(_s256(body["code_verifier"]),
                                                                                challenge):
                abort(400)
            cursor.execute(runtime.statements["GRANT"], (digest(refresh_token), grant_id, client_id, account,
                                                         session, scope, code_hash, _timestamp(now + REFRESH_TTL)))
        access = _token(runtime, account, AUDIENCE, now, {
            "client_id": client_id, "scope": scope, "grant_id": grant_id, "sid": session, "auth_time": auth_time,
            "amr": amr.split()})
        at_hash = base64.urlsafe_b64encode(hashlib.sha256(access.encode()).digest()[:16]).rstrip(b"=").decode()
        id_token = _token(runtime, account, client_id, now, {
            "auth_time": auth_time, "amr": amr.split(), "acr": "2" if "otp" in amr.split() else "1", "sid": session,
            "azp": client_id, "at_hash": at_hash, **({"nonce": nonce} if nonce else {})}, ID_TOKEN_TYPE)
        return {"access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TTL, "scope": scope,
                "refresh_token": refresh_token, "id_token": id_token}


def email(number: int) -> str:
    """The address of the floor's account `number` (0 to `count - 1` of `seed`)."""
    return f"floor-{number}@example.com"


def seed(database_url: str, count: int, password: str = "") -> list[str]:
    """The schema, the service client, and `count` accounts (`email(number)`, signing in with `password`)
    each with a session and a live refresh token; the tokens."""
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    issued = [secrets.token_urlsafe(32) for _ in range(count)]
    password_hash = passwords.HASHER.hash(password) if password else None
    try:
        metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(service_clients.insert().values(client_id=SERVICE, secret_hash=digest(SERVICE_SECRET),
                                                               scopes=SERVICE_SCOPES))
            for number, token in enumerate(issued):
                account, session = _account(connection, number, now, password_hash)
                connection.execute(tokens.insert().values(token_hash=digest(token), session_id=session,
                                                          expires_at=now + REFRESH_TTL))
    finally:
        engine.dispose()
    return issued


def _account(connection, number: int, now: datetime, password_hash: str | None = None) -> tuple[str, str]:
    account, session = str(uuid.uuid4()), str(uuid.uuid4())
    connection.execute(accounts.insert().values(id=account, email=email(number), email_verified=True,
                                                first_name="Floor", last_name="Bench", password_hash=password_hash))
    connection.execute(sessions.insert().values(id=session, account_id=account, amr="pwd", auth_time=now))
    return account, session


class CodeMinter:
    """Authorization codes of the relying party for one account's session, written straight into the floor's
    database by the caller's process (one multi-row INSERT), so none of it runs on the floor server; each
    lives `CODE_TTL`. `seed` makes the schema first. Call `close` when done."""

    def __init__(self, database_url: str):
        self.engine = make_engine(database_url)
        with self.engine.begin() as connection:
            self.account, self.session = _account(connection, -1, datetime.now(UTC))

    def __call__(self, count: int) -> list[tuple[str, str]]:
        """`count` new (code, PKCE verifier) pairs."""
        now = datetime.now(UTC)
        minted = [(secrets.token_urlsafe(32), secrets.token_urlsafe(48)) for _ in range(count)]
        rows = [dict(code_hash=digest(code), client_id=RP, account_id=self.account, session_id=self.session,
                     redirect_uri=REDIRECT_URI, scope=SCOPE, nonce=secrets.token_urlsafe(12),
                     code_challenge=_s256(verifier), amr="pwd", auth_time=int(now.timestamp()),
                     expires_at=now + CODE_TTL, used_at=None) for code, verifier in minted]
        if rows:
            with self.engine.begin() as connection:
                connection.execute(insert(codes), rows)
        return minted

    def close(self) -> None:
        self.engine.dispose()


def create_app() -> Flask:
    engine = make_engine(os.environ[URL_VARIABLE], autocommit=True)
    private = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    statements = {name: driver_sql(statement, engine.dialect) for name, statement in (
        ("ACCOUNT", ACCOUNT), ("READ", READ), ("INSERT", INSERT), ("CLIENT", CLIENT), ("SPEND", SPEND),
        ("GRANT", GRANT))}
    app = Flask("floor")
    app.extensions[EXTENSION] = Runtime(engine, jwk.construct(private, "ES256"), statements, digest(RP_SECRET))
    app.config.update(API_TITLE="Token endpoint floors", API_VERSION="1.0", OPENAPI_VERSION="3.0.3")
    Api(app).register_blueprint(blp)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app
