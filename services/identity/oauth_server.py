"""The OpenID Provider's protocol, on authlib's server parts: the authorization code grant with PKCE
(S256 only) and OpenID Connect, the refresh-token grant (always rotated), revocation (RFC 7009) and
introspection (RFC 7662). authlib checks the requests and shapes the answers; what it stores and every
token it hands out are ours: rows through the unit of work in `request.context`, JWTs from `shared.jwt.mint`.

No Flask here: the api layer builds a `ProtocolRequest` from the HTTP request and turns the
`(status, body, headers)` answers back into responses.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import unquote_plus

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core.grants import OpenIDCode

from services.identity.keys import KeyStore
from services.identity.models import Account, AuthorizationRequest
from services.identity.relying_parties import SCOPES, RelyingParty
from services.identity.repository import GrantRow
from services.identity.settings import Settings
from services.identity.unit_of_work import IdentityUnitOfWork
from shared import jwt, opaque_tokens
from shared.request_guard import NUL

log = logging.getLogger("threshold.identity.oauth")

CODE_TTL = 60  # seconds; RFC 6749 4.1.2 asks for a short life (10 minutes at most)
PROMPTS = ("none", "login", "consent", "select_account")
CONFIDENTIAL_METHODS = ["client_secret_basic", "client_secret_post"]
ALL_METHODS = [*CONFIDENTIAL_METHODS, "none"]


@dataclass
class Context:
    """What the protocol's callbacks need for one request."""

    uow: IdentityUnitOfWork
    keys: KeyStore
    settings: Settings
    now: datetime
    verify: Callable[[str], dict]  # the app's access-token verifier
    pending: AuthorizationRequest | None = None  # the request a sign-in is completing
    person: dict = field(default_factory=dict)  # what completing it knows of the person's sign-in


class _Payload(OAuth2Payload):
    def __init__(self, values: Mapping[str, list[str]]):
        self._datalist = defaultdict(list, {key: list(items) for key, items in values.items()})

    @property
    def data(self) -> dict:
        return {key: items[0] for key, items in self._datalist.items() if items}

    @property
    def datalist(self) -> defaultdict:
        return self._datalist


class ProtocolRequest(OAuth2Request):
    """An HTTP request as authlib reads it: query and form parameters, headers, and our `context`."""

    def __init__(self, *, method: str, uri: str, query: Mapping[str, list[str]], form: Mapping[str, list[str]],
                 headers: Mapping[str, str], context: Context):
        super().__init__(method, uri, headers=headers)
        self._query = _Payload(query).data
        self._form = _Payload(form).data
        self.payload = _Payload({**query, **form})
        self.context = context

    @property
    def args(self) -> dict:
        return self._query

    @property
    def form(self) -> dict:
        return self._form


def basic_credentials(header: str) -> tuple[str, str] | None:
    """client_secret_basic (RFC 6749 2.3.1): Base64, then the id and the secret each form-urldecoded
    (`+` is a space, `%2B` a plus). None when the header is not Basic or cannot be read."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, colon, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, secret = unquote_plus(client_id), unquote_plus(secret)
    if not colon or NUL in client_id:
        return None
    return client_id, secret


def _authenticate_basic(query_client, request: ProtocolRequest):
    credentials = basic_credentials(request.headers.get("Authorization", ""))
    if credentials is None:
        return None
    client = query_client(credentials[0])
    if client is not None and client.check_client_secret(credentials[1]):
        return client
    return None


# --- the authorization code, as authlib asks about it


@dataclass(frozen=True)
class IssuedCode:
    row: Any  # the authorization request's columns (AuthorizationRequests.by_code), read-only
    parameters: dict

    @property
    def code_challenge(self) -> str | None:
        return self.parameters.get("code_challenge")

    @property
    def code_challenge_method(self) -> str | None:
        return self.parameters.get("code_challenge_method")

    def get_redirect_uri(self) -> str:
        return self.parameters["redirect_uri"]

    def get_scope(self) -> str:
        return self.row.scope or ""

    def get_nonce(self) -> str | None:
        return self.parameters.get("nonce")

    def get_auth_time(self) -> int:
        assert self.row.auth_time is not None, "a code is issued only for a completed sign-in"
        return int(self.row.auth_time.timestamp())

    def get_acr(self) -> str:
        return acr(self.row.amr or "")

    def get_amr(self) -> list[str]:
        return (self.row.amr or "").split()


def acr(amr: str) -> str:
    """"1": one factor; "2": two (a password or provider, and a TOTP or recovery code)."""
    return "2" if "otp" in amr.split() else "1"


# --- tokens


def scoped_claims(*, account: Account, scope: str, workspace: str | None) -> dict:
    """The person's claims the scope opens (OpenID Connect Core 5.4, and `workspace`)."""
    scopes = scope.split()
    claims: dict = {}
    if "email" in scopes:
        claims.update(email=account.email, email_verified=account.email_verified)
    if "profile" in scopes:
        claims.update(given_name=account.first_name, family_name=account.last_name,
                      name=f"{account.first_name} {account.last_name}".strip(), updated_at=int(
                          account.updated_at.timestamp()))
    if "workspace" in scopes and workspace:
        claims.update(json.loads(workspace))
    return claims


def _issue(context: Context, *, grant: GrantRow, account: Account, refresh: bool,
           previous_hash: str | None = None) -> dict:
    """An RFC 9068 access token for the grant, and a refresh token when the grant may have one."""
    settings, key = context.settings, context.keys.signing_key()
    claims = {"client_id": grant.client_id, "scope": grant.scope, "grant_id": grant.id,
              "sid": grant.session_id, "auth_time": int(grant.auth_time.timestamp()), "amr": grant.amr.split(),
              **scoped_claims(account=account, scope=grant.scope, workspace=grant.workspace)}
    token = {"access_token": jwt.mint(key=key.signing, kid=key.kid, algorithm=key.algorithm, issuer=settings.issuer,
                                      subject=account.id, audience=settings.audience, issued_at=context.now,
                                      lifetime=settings.access_token_ttl, claims=claims),
             "token_type": "Bearer", "expires_in": settings.access_token_ttl, "scope": grant.scope}
    if refresh:
        secret, digest = opaque_tokens.generate()
        added = context.uow.op_refresh_tokens.add(
            token_hash=digest, grant_id=grant.id, now=context.now, previous_hash=previous_hash,
            expires_at=context.now + timedelta(seconds=settings.refresh_token_ttl))
        if not added:  # another request rotated the same token first: a reuse
            _revoke_reused(context, grant.id, "refresh token")
        token["refresh_token"] = secret
    return token


def _revoke_reused(context: Context, grant_id: str, what: str):
    context.uow.grants.revoke(grant_id, context.now)
    log.warning("%s used twice; grant revoked", what, extra={"event": "oauth_grant_revoked_on_reuse",
                                                             "grant_id": grant_id})
    raise InvalidGrantError(f"This {what} was already used; every token issued from it is revoked.")


def id_token(context: Context, *, client: RelyingParty, account: Account, code: IssuedCode,
             access_token: str) -> str:
    """The ID token of a code exchange, signed with the algorithm the client registered."""
    key = context.keys.signing_key(client.id_token_signed_response_alg)
    half = hashlib.sha256(access_token.encode()).digest()[:16]
    claims = {"auth_time": code.get_auth_time(), "amr": code.get_amr(), "acr": code.get_acr(),
              "sid": code.row.session_id, "azp": client.client_id,
              "at_hash": base64.urlsafe_b64encode(half).rstrip(b"=").decode(),
              **scoped_claims(account=account, scope=code.get_scope(), workspace=code.row.workspace)}
    if code.get_nonce():
        claims["nonce"] = code.get_nonce()
    return jwt.mint(key=key.signing, kid=key.kid, algorithm=key.algorithm, issuer=context.settings.issuer,
                    subject=account.id, audience=client.client_id, issued_at=context.now,
                    lifetime=context.settings.access_token_ttl, claims=claims, token_type=jwt.ID_TOKEN_TYPE)


# --- grants and extensions


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    @property
    def context(self) -> Context:
        return self.request.context

    def save_authorization_code(self, code: str, request: ProtocolRequest) -> None:
        pending = request.context.pending
        assert pending is not None, "a code is saved only while a sign-in completes a request"
        pending.code_hash = opaque_tokens.digest(code)
        pending.code_expires_at = request.context.now + timedelta(seconds=CODE_TTL)
        pending.scope = request.scope

    def query_authorization_code(self, code: str, client: RelyingParty) -> IssuedCode | None:
        context = self.context
        code_hash = opaque_tokens.digest(code)
        row = context.uow.authorization_requests.spend_code(code_hash=code_hash, client_id=client.client_id,
                                                            now=context.now)
        if row is None:  # no such code of this client, or a replayed one: that revokes what it opened
            spent = context.uow.authorization_requests.by_code(code_hash)
            if spent is not None and spent.client_id == client.client_id and spent.grant_id is not None:
                _revoke_reused(context, spent.grant_id, "authorization code")
            return None
        if row.code_expires_at is None or row.code_expires_at <= context.now:
            return None
        return IssuedCode(row, json.loads(row.parameters))

    def delete_authorization_code(self, authorization_code: IssuedCode) -> None:
        """Spent when it was read (`query_authorization_code`)."""

    def authenticate_user(self, authorization_code: IssuedCode):
        """The account's claims (a read-only row: `_issue` and `id_token` read its attributes as of an Account)."""
        account_id = authorization_code.row.account_id
        return self.context.uow.accounts.claims(account_id) if account_id is not None else None

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        context, code = self.context, self.request.authorization_code
        grant = context.uow.grants.add(client_id=self.request.client.client_id, account_id=user.id,
                                       session_id=code.row.session_id, scope=code.get_scope(),
                                       auth_time=code.row.auth_time, amr=code.row.amr, workspace=code.row.workspace,
                                       now=context.now)
        context.uow.authorization_requests.record_grant(code.row.code_hash, grant.id)
        refresh = include_refresh_token and "offline_access" in grant.scope.split()
        return _issue(context, grant=grant, account=user, refresh=refresh)


class S256Only(CodeChallenge):
    """PKCE with S256: required of public clients, accepted from confidential ones; `plain` refused."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if grant.request.client.public and not data.get("code_challenge"):
            raise InvalidRequestError("A public client must send a PKCE code_challenge (S256).")
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256; plain is refused.")
        super().validate_code_challenge(grant, redirect_uri)


class OpenIdRules:
    """OpenID Connect's demands on the authorization request, checked once its redirect_uri is trusted
    (so their errors go back to the client): scope openid and only known scopes, a valid prompt and
    max_age, responses in the query only, no request objects."""

    def __call__(self, grant):
        grant.register_hook("after_validate_authorization_request_payload", self.validate)

    @staticmethod
    def validate(grant, redirect_uri):
        data = grant.request.payload.data
        scopes = (data.get("scope") or "").split()
        if "openid" not in scopes:
            raise InvalidScopeError("The scope must include openid.")
        if not set(scopes) <= set(SCOPES):
            raise InvalidScopeError(f"Supported scopes: {' '.join(SCOPES)}.")
        prompts = (data.get("prompt") or "").split()
        if not set(prompts) <= set(PROMPTS) or ("none" in prompts and len(prompts) > 1):
            raise InvalidRequestError("prompt must be none, or any of login, consent, select_account.")
        max_age = data.get("max_age")
        if max_age is not None and (not max_age.isdigit() or len(max_age) > 9):
            raise InvalidRequestError("max_age must be a whole number of seconds.")
        if data.get("response_mode", "query") != "query":
            raise InvalidRequestError("Only response_mode=query is supported.")
        if "request" in data or "request_uri" in data:
            raise InvalidRequestError("Request objects are not supported.", error="request_not_supported")
        for name in ("state", "nonce", "login_hint", "workspace_hint"):
            if len(data.get(name) or "") > 500:
                raise InvalidRequestError(f"{name} is longer than 500 characters.")


class IdToken(OpenIDCode):
    """The ID token of the code grant, minted by `id_token` (authlib's encoder is not used)."""

    def exists_nonce(self, nonce, request):
        return False  # the nonce protects the client, which compares it; codes are single-use here

    def encode_id_token(self, token, request):
        return id_token(request.context, client=request.client, account=request.user,
                        code=request.authorization_code, access_token=token["access_token"])


@dataclass(frozen=True)
class GrantCredential:
    """A refresh or access token of a grant, as authlib's refresh, revocation and introspection ask about it."""

    grant: Any  # the grant's columns, read-only: a row of `OAuthGrants.get` or `with_grant`, or a GrantRow
    expires_at: datetime
    now: datetime
    kind: str  # "refresh_token" or "access_token"
    claims: dict = field(default_factory=dict)
    account: Any = None  # a refresh token's account claims, read with it (`OAuthRefreshTokens.with_grant`)

    def check_client(self, client: ClientMixin) -> bool:
        return client.get_client_id() == self.grant.client_id

    def get_scope(self) -> str:
        return self.grant.scope

    def is_expired(self) -> bool:
        return self.expires_at <= self.now

    def is_revoked(self) -> bool:
        return self.grant.revoked_at is not None


class RefreshGrant(RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> GrantCredential | None:
        context = self.request.context
        found = find_refresh_token(context, refresh_token)
        if found is None:
            return None
        token, account = found
        if token.used:
            _revoke_reused(context, token.id, "refresh token")
        credential = GrantCredential(token, token.token_expires_at, context.now, "refresh_token", account=account)
        if credential.is_revoked() or credential.is_expired() or not token.session_active:
            return None
        return credential

    def authenticate_user(self, refresh_token: GrantCredential):
        """The account's claims, read with the token (a read-only row: `_issue` reads its attributes as of an
        Account)."""
        return refresh_token.account

    def revoke_old_credential(self, refresh_token: GrantCredential) -> None:
        """Its successor names it (`previous_hash`), which marks it used."""

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        credential: GrantCredential = self.request.refresh_token
        previous = opaque_tokens.digest(self.request.form.get("refresh_token", ""))
        return _issue(self.request.context, grant=credential.grant, account=user, refresh=True,
                      previous_hash=previous)


def find_refresh_token(context: Context, token: str):
    """The grant of the refresh token `token` is, with the token's own columns, and its account's claims
    (`OAuthRefreshTokens.with_grant`), or None."""
    return context.uow.op_refresh_tokens.with_grant(opaque_tokens.digest(token))


def find_token(context: Context, token: str, hint: str | None) -> GrantCredential | None:
    """A refresh token or an access token of a grant, whichever `token` is; None for anything else."""
    if token.count(".") == 2 and hint != "refresh_token":
        try:
            claims = context.verify(token)
        except jwt.TokenRejected:
            return None
        grant = context.uow.grants.get(claims["grant_id"]) if isinstance(claims.get("grant_id"), str) else None
        if grant is None:
            return None
        expires = datetime.fromtimestamp(int(claims["exp"]), context.now.tzinfo)
        return GrantCredential(grant, expires, context.now, "access_token", claims)
    found = find_refresh_token(context, token)
    if found is None:
        return None
    refresh_token, _account = found
    if refresh_token.used:
        return None
    return GrantCredential(refresh_token, refresh_token.token_expires_at, context.now, "refresh_token")


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ALL_METHODS

    def authenticate_token(self, request: ProtocolRequest, client):
        self.check_params(request, client)
        token = find_token(request.context, request.form["token"], request.form.get("token_type_hint"))
        return token if token is not None and token.check_client(client) else None  # RFC 7009 2.2: 200 anyway

    def revoke_token(self, token: GrantCredential, request: ProtocolRequest) -> None:
        request.context.uow.grants.revoke(token.grant.id, request.context.now)


class Introspection(IntrospectionEndpoint):
    # RFC 7662 for confidential clients: a public one gets 401
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = CONFIDENTIAL_METHODS

    def authenticate_token(self, request: ProtocolRequest, client):
        self.check_params(request, client)
        token = find_token(request.context, request.form["token"], request.form.get("token_type_hint"))
        if token is None or not self.check_permission(token, client, request):
            return None
        if not request.context.uow.sessions.active(token.grant.session_id):
            return None
        return token

    def check_permission(self, token: GrantCredential, client, request) -> bool:
        return token.check_client(client)

    def introspect_token(self, token: GrantCredential) -> dict:
        grant = token.grant
        body = {"active": True, "client_id": grant.client_id, "scope": grant.scope, "sub": grant.account_id,
                "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
                "exp": int(token.expires_at.timestamp()), "sid": grant.session_id}
        for name in ("iss", "aud", "iat", "jti"):
            if name in token.claims:
                body[name] = token.claims[name]
        return body


class Server(AuthorizationServer):
    """authlib's authorization server with our clients and grants. Built once per process."""

    def __init__(self, clients: Callable[[str], RelyingParty | None]):
        super().__init__(scopes_supported=list(SCOPES))
        # authlib logs the tokens it issues at DEBUG ("Issue token %r to %r"): none may reach a log line.
        logging.getLogger("authlib").setLevel(max(logging.INFO, logging.getLogger("authlib").getEffectiveLevel()))
        self._clients = clients
        self.register_grant(CodeGrant, [S256Only(required=True), OpenIdRules(), IdToken(require_nonce=False)])
        self.register_grant(RefreshGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)
        self.register_client_auth_method("client_secret_basic", _authenticate_basic)

    def query_client(self, client_id: str) -> RelyingParty | None:
        if not isinstance(client_id, str) or NUL in client_id or len(client_id) > 100:
            return None
        return self._clients(client_id)

    def create_oauth2_request(self, request: ProtocolRequest) -> ProtocolRequest:
        return request  # built by the caller (`provider.Provider._request`)

    def save_token(self, token, request) -> None:
        """Saved as it is made (`_issue`)."""

    def send_signal(self, name, *args, **kwargs) -> None:
        """No signals."""

    def handle_response(self, status, body, headers):
        return status, body, headers
