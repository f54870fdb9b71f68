"""Threshold as an OpenID Provider: what the `/oauth2/*` routes and the hosted pages' internal routes do.

The login UI is the hosted pages (`services/web`, the Zitadel login-v2 pattern, docs/oidc-provider.md):
`authorize` checks a relying party's request, keeps it as an authorization request and sends the
browser to `{WEB_PUBLIC_URL}/sign-in?auth_request=<id>`; web signs the person in, reads the request
(`describe`) and completes it (`complete`) with the person's own access token, and gets back the URL
that takes the browser to the client with its code. Identity keeps no browser session of its own:
single sign-on is web's session.
"""
from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.errors import OAuth2Error

from services.identity import relying_parties
from services.identity.accounts import failure_policy
from services.identity.autocommit import Reads
from services.identity.clients import secret_guess_key
from services.identity.errors import InvalidClient
from services.identity.keys import KeyStore
from services.identity.models import AuthorizationRequest, RelyingPartyRecord
from services.identity.oauth_server import Context, ProtocolRequest, Server, basic_credentials, scoped_claims
from services.identity.relying_parties import RelyingParty
from services.identity.settings import Settings
from services.identity.unit_of_work import IdentityUnitOfWork
from shared import jwt
from shared.errors import DomainError
from shared.throttle import Throttle

AUTH_REQUEST_TTL = 1800  # seconds: time enough to sign up, verify the address and name an organization
PARAMETERS = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
              "code_challenge_method", "prompt", "max_age", "login_hint", "workspace_hint")
REFUSALS = ("login_required", "access_denied", "interaction_required", "account_selection_required",
            "consent_required")
WORKSPACE_ROLES = ("owner", "admin", "member")


class AuthRequestError(DomainError):
    """Base of the errors the hosted pages get from the authorization-request routes."""

    message = "This sign-in request cannot go on."

    def __init__(self, detail: str | None = None):
        super().__init__(detail or self.message)


class AuthRequestNotFound(AuthRequestError):
    code = "not_found"
    message = "There is no such sign-in request."


class AuthRequestExpired(AuthRequestError):
    code = "auth_request_expired"
    message = "This sign-in request has expired: start again from the application."


class AuthRequestCompleted(AuthRequestError):
    code = "auth_request_completed"
    message = "This sign-in request is already complete."


class PersonTokenInvalid(AuthRequestError):
    code = "person_token_invalid"
    message = "The person's access token is not valid or their session has ended: sign them in again."


class LoginRequired(AuthRequestError):
    code = "login_required"
    message = "This application asks for a fresh sign-in: ask for the password again, then complete the request."


class WorkspaceRequired(AuthRequestError):
    code = "workspace_required"
    message = "This application asks for a workspace: complete the request with the chosen one."


@dataclass(frozen=True)
class HttpRequest:
    """The parts of an HTTP request the protocol reads (the api layer fills it from Flask's)."""

    method: str
    query: Mapping[str, list[str]]
    form: Mapping[str, list[str]]
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Redirect:
    url: str


@dataclass(frozen=True)
class ErrorPage:
    """A page for the browser, never a redirect: the request cannot be trusted to name where to go."""

    message: str


@dataclass(frozen=True)
class SignedOut:
    """Signed out, with nowhere registered to go back to."""


class Clients:
    """The relying parties: OIDC_CLIENTS first, then the ones the CLI wrote to the database."""

    def __init__(self, configured: Mapping[str, RelyingParty], reads: Reads):
        self.configured = configured
        self.reads = reads

    def __call__(self, client_id: str) -> RelyingParty | None:
        client = self.configured.get(client_id)
        if client is not None:
            return client
        row = self.reads.relying_party(client_id)
        return relying_parties.from_record(row.client_id, row.secret_hash, row.metadata_json) if row else None


def add_client(uow: IdentityUnitOfWork, *, client_id: str, registration: dict, now: datetime) -> str | None:
    """Register (or replace) a client in the database; returns its new secret (shown once), None for a
    public client. Raises ConfigError when the registration is not valid."""
    public = registration.get("token_endpoint_auth_method") == "none"
    secret = None if public else relying_parties.generate_secret()
    client = relying_parties.parse(client_id, {**registration, **({} if public else {"client_secret": secret})},
                                   variable="clients add")
    with uow:
        uow.relying_parties.put(RelyingPartyRecord(client_id=client_id, secret_hash=client.secret_hash,
                                                   metadata_json=json.dumps(client.registration()), created_at=now))
        uow.commit()
    return secret


class Provider:
    """The OpenID Provider of one process: authlib's server with our clients, keys and settings."""

    def __init__(self, *, clients: Clients, keys: KeyStore, settings: Settings, verify: Callable[[str], dict]):
        self.clients = clients
        self.keys = keys
        self.settings = settings
        self.verify = verify
        self.server = Server(clients)

    def _request(self, uow: IdentityUnitOfWork, *, http: HttpRequest, path: str, now: datetime) -> ProtocolRequest:
        context = Context(uow=uow, keys=self.keys, settings=self.settings, now=now, verify=self.verify)
        query = urlencode([(key, value) for key, values in http.query.items() for value in values])
        # authlib reads the URI only to refuse plain http off loopback; the settings decide that
        # (IDENTITY_PUBLIC_URL must be https or loopback in production), so development may use any host.
        base = self.settings.public_url.replace("http://", "https://", 1)
        return ProtocolRequest(method=http.method, uri=f"{base}{path}?{query}", query=http.query,
                               form=http.form, headers=http.headers, context=context)

    def _to_client(self, url: str) -> str:
        """Every authorization response names its issuer (RFC 9207), errors included."""
        return add_params_to_uri(url, [("iss", self.settings.issuer)])

    def _error_response(self, error: OAuth2Error, state: str | None) -> Redirect | ErrorPage:
        if not error.redirect_uri:
            return ErrorPage(error.description or "The application's sign-in request is not valid.")
        error.state = state
        _, _, headers = error()
        return Redirect(self._to_client(dict(headers)["Location"]))

    # --- the browser's side

    def authorize(self, uow: IdentityUnitOfWork, *, http: HttpRequest, now: datetime) -> Redirect | ErrorPage:
        """Check a relying party's authorization request and send the browser to the hosted sign-in page.

        A request whose client or redirect_uri is not registered gets an error page and is never
        redirected; other errors go back to the redirect_uri with `state` and `iss`."""
        request = self._request(uow, http=http, path="/oauth2/authorize", now=now)
        try:
            grant = self.server.get_authorization_grant(request)
            grant.validate_no_multiple_request_parameter(request)
            for name in PARAMETERS:
                if len(request.payload.datalist.get(name, [])) > 1:
                    raise OAuth2Error(f"{name} is given more than once.", error="invalid_request")
            grant.validate_authorization_request()
        except OAuth2Error as error:
            return self._error_response(error, request.payload.state)
        except ValueError:  # authlib refuses to build an error whose description quotes non-ASCII input
            return ErrorPage("The application's sign-in request holds characters no parameter takes.")
        parameters = {name: request.payload.data[name] for name in PARAMETERS if request.payload.data.get(name)}
        pending = AuthorizationRequest(id=secrets.token_urlsafe(24), client_id=parameters["client_id"],
                                       parameters=json.dumps(parameters), created_at=now,
                                       expires_at=now + timedelta(seconds=AUTH_REQUEST_TTL))
        with uow:
            uow.authorization_requests.add(pending)
            uow.commit()
        return Redirect(f"{self.settings.web_public_url}/sign-in?{urlencode({'auth_request': pending.id})}")

    # --- the hosted pages' side (internal routes, service token)

    def _pending(self, uow: IdentityUnitOfWork, *, request_id: str, now: datetime) -> tuple[AuthorizationRequest, dict]:
        pending = uow.authorization_requests.get(request_id)
        if pending is None:
            raise AuthRequestNotFound()
        if pending.completed_at is not None:
            raise AuthRequestCompleted()
        if pending.expires_at <= now:
            raise AuthRequestExpired()
        return pending, json.loads(pending.parameters)

    def describe(self, uow: IdentityUnitOfWork, *, request_id: str, now: datetime) -> dict:
        """What the hosted pages need to show for an authorization request."""
        with uow:
            pending, parameters = self._pending(uow, request_id=request_id, now=now)
        client = self.clients(pending.client_id)
        if client is None:
            raise AuthRequestNotFound()
        prompts = parameters.get("prompt", "").split()
        return {
            "id": pending.id,
            "client_id": client.client_id,
            "client_name": client.name,
            "scopes": parameters.get("scope", "").split(),
            "login_hint": parameters.get("login_hint"),
            "prompt": prompts,
            "max_age": int(parameters["max_age"]) if "max_age" in parameters else None,
            "password_required": "login" in prompts or parameters.get("max_age") == "0",
            "signed_in_after": self._signed_in_after(pending, parameters),
            "workspace_required": "workspace" in parameters.get("scope", "").split(),
            "workspace_hint": parameters.get("workspace_hint"),
            "expires_at": pending.expires_at,
        }

    @staticmethod
    def _signed_in_after(pending: AuthorizationRequest, parameters: dict) -> datetime | None:
        """The earliest sign-in (`auth_time`) this request accepts, or None for any."""
        bounds = []
        if "login" in parameters.get("prompt", "").split():
            bounds.append(pending.created_at.replace(microsecond=0))
        if "max_age" in parameters:
            bounds.append(pending.created_at.replace(microsecond=0) - timedelta(seconds=int(parameters["max_age"])))
        return max(bounds) if bounds else None

    def complete(self, uow: IdentityUnitOfWork, *, request_id: str, person_token: str, workspace: dict | None,
                 now: datetime) -> dict:
        """Complete an authorization request for the person whose access token the hosted pages hold;
        returns `{"redirect_to": <the client's redirect_uri with code, state and iss>}`."""
        try:
            person = self.verify(person_token)
        except jwt.TokenRejected:
            raise PersonTokenInvalid() from None
        if "client_id" in person or not isinstance(person.get("sid"), str):
            raise PersonTokenInvalid("The person's token must come from their own sign-in, not from a client.")
        with uow:
            pending, parameters = self._pending(uow, request_id=request_id, now=now)
            if not uow.sessions.active(person["sid"]):
                raise PersonTokenInvalid()
            auth_time = datetime.fromtimestamp(int(person["auth_time"]), now.tzinfo)
            earliest = self._signed_in_after(pending, parameters)
            max_age = parameters.get("max_age")
            if (earliest is not None and auth_time < earliest) or \
                    (max_age is not None and (now - auth_time).total_seconds() > int(max_age)):
                raise LoginRequired()
            if "workspace" in parameters.get("scope", "").split():
                if workspace is None:
                    raise WorkspaceRequired()
                pending.workspace = json.dumps(workspace)
            account = uow.accounts.get(person["sub"])
            if account is None:
                raise PersonTokenInvalid()
            request = self._request(uow, http=HttpRequest("GET", {k: [v] for k, v in parameters.items()}, {}, {}),
                                    path="/oauth2/authorize", now=now)
            request.context.pending = pending
            pending.account_id, pending.session_id = account.id, person["sid"]
            pending.auth_time, pending.amr = auth_time, " ".join(person.get("amr") or [])
            pending.completed_at = now
            try:
                grant = self.server.get_authorization_grant(request)
                redirect_uri = grant.validate_authorization_request()
                _, _, headers = grant.create_authorization_response(redirect_uri, account)
                target: Redirect | ErrorPage = Redirect(self._to_client(dict(headers)["Location"]))
            except OAuth2Error as error:  # the client changed since the request began
                target = self._error_response(error, parameters.get("state"))
            uow.commit()
        if isinstance(target, ErrorPage):
            raise AuthRequestNotFound(target.message)
        return {"redirect_to": target.url}

    def refuse(self, uow: IdentityUnitOfWork, *, request_id: str, error: str, now: datetime) -> dict:
        """End an authorization request without a sign-in (`prompt=none` and nobody signed in:
        `login_required`; the person declined: `access_denied`); returns the URL back to the client."""
        with uow:
            pending, parameters = self._pending(uow, request_id=request_id, now=now)
            pending.completed_at = now
            uow.commit()
        params = [("error", error)] + ([("state", parameters["state"])] if "state" in parameters else [])
        return {"redirect_to": self._to_client(add_params_to_uri(parameters["redirect_uri"], params))}

    # --- the client's side (back channel)

    def _guard_secret(self, *, throttle: Throttle, http: HttpRequest) -> None:
        """Wrong client secrets are throttled per client id and client address, as at `/v1/oauth/token`
        (`Throttle.guess_cheap`): InvalidClient for a wrong one, RateLimited while blocked. Requests without a
        secret (public clients) are left to the protocol."""
        form = {key: values[0] for key, values in http.form.items() if values}
        presented = basic_credentials(http.headers.get("Authorization", "")) or \
            (form.get("client_id"), form.get("client_secret"))
        client_id, secret = presented
        if not client_id or secret is None:
            return

        def check() -> None:
            client = self.server.query_client(client_id)
            if client is None or not client.check_client_secret(secret):
                raise InvalidClient()

        throttle.guess_cheap(secret_guess_key(client_id), check, InvalidClient, **failure_policy(self.settings))

    def _endpoint(self, uow: IdentityUnitOfWork, *, throttle: Throttle, http: HttpRequest, path: str, now: datetime,
                  answer: Callable[[ProtocolRequest], tuple]) -> tuple[int, dict, list]:
        """A back-channel endpoint: the client's secret under the guess throttle, then the protocol.
        Whatever a request changed is committed, failures included: a replayed code's revocation stays."""
        try:
            self._guard_secret(throttle=throttle, http=http)
        except InvalidClient as error:
            return 401, {"error": "invalid_client", "error_description": error.detail}, []
        with uow:
            result = answer(self._request(uow, http=http, path=path, now=now))
            uow.commit()
        return result

    def token(self, uow: IdentityUnitOfWork, *, throttle: Throttle, http: HttpRequest,
              now: datetime) -> tuple[int, dict, list]:
        """The token endpoint for the authorization_code and refresh_token grants (RFC 6749 answers)."""
        return self._endpoint(uow, throttle=throttle, http=http, path="/oauth2/token", now=now,
                              answer=self.server.create_token_response)

    def revoke(self, uow: IdentityUnitOfWork, *, throttle: Throttle, http: HttpRequest,
               now: datetime) -> tuple[int, dict, list]:
        """RFC 7009: revoking a token revokes its grant (every token issued from its code)."""
        return self._endpoint(uow, throttle=throttle, http=http, path="/oauth2/revoke", now=now,
                              answer=lambda request: self.server.create_endpoint_response("revocation", request))

    def introspect(self, uow: IdentityUnitOfWork, *, throttle: Throttle, http: HttpRequest,
                   now: datetime) -> tuple[int, dict, list]:
        """RFC 7662, for confidential clients, about their own tokens."""
        return self._endpoint(uow, throttle=throttle, http=http, path="/oauth2/introspect", now=now,
                              answer=lambda request: self.server.create_endpoint_response("introspection", request))

    def userinfo(self, uow: IdentityUnitOfWork, *, claims: dict) -> dict:
        """The person's claims an access token of this provider opens (by its scope)."""
        scope = str(claims.get("scope", "")).split()
        if "openid" not in scope or not isinstance(claims.get("grant_id"), str):
            raise jwt.TokenRejected("The userinfo endpoint takes access tokens issued by this provider for openid.")
        with uow:
            grant = uow.grants.get(claims["grant_id"])
            if grant is None or grant.revoked_at is not None or not uow.sessions.active(grant.session_id):
                raise jwt.TokenRejected("The access token has been revoked.")
            account = uow.accounts.get(grant.account_id)
            if account is None:
                raise jwt.TokenRejected("The account no longer exists.")
            return {"sub": account.id, **scoped_claims(account=account, scope=grant.scope,
                                                        workspace=grant.workspace)}

    def end_session(self, uow: IdentityUnitOfWork, *, id_token_hint: str | None, post_logout_redirect_uri: str | None,
                    state: str | None, now: datetime) -> Redirect | ErrorPage | SignedOut:
        """RP-initiated logout: the session the ID token names ends (the hosted pages' sign-in with it, and
        every grant it opened); the browser goes to a registered post_logout_redirect_uri, with `state`."""
        if not id_token_hint:
            return ErrorPage("Sign-out needs the application's id_token_hint.")
        audience = jwt.unverified_audience(id_token_hint)
        client = self.clients(audience) if audience else None
        if client is None:
            return ErrorPage("The id_token_hint was not issued to a known application.")
        hints = jwt.Verifier(self.keys.verifying_key, self.settings.issuer, client.client_id,
                             algorithms=("ES256", "RS256"), token_type="jwt", cache_size=0, expired_ok=True,
                             clock=lambda: now)
        try:
            claims = hints.verify(id_token_hint)
        except jwt.TokenRejected:
            return ErrorPage("The id_token_hint is not valid.")
        if post_logout_redirect_uri is not None and post_logout_redirect_uri not in client.post_logout_redirect_uris:
            return ErrorPage("That address is not registered for signing out of this application.")
        session_id = claims.get("sid")
        if isinstance(session_id, str):
            with uow:
                uow.sessions.revoke(session_id, now)
                uow.grants.revoke_session(session_id, now)
                uow.commit()
        if post_logout_redirect_uri is None:
            return SignedOut()
        return Redirect(add_params_to_uri(post_logout_redirect_uri, [("state", state)]) if state
                        else post_logout_redirect_uri)

    def discovery(self) -> dict:
        """The OpenID Provider metadata (OpenID Connect Discovery 1.0, RFC 8414, RFC 9207)."""
        base = self.settings.public_url
        algorithms = [algorithm for algorithm in ("ES256", "RS256") if self.keys.has(algorithm)]
        return {
            "issuer": self.settings.issuer,  # IDENTITY_PUBLIC_URL whenever OIDC_CLIENTS are set (settings)
            "authorization_endpoint": f"{base}/oauth2/authorize",
            "token_endpoint": f"{base}/oauth2/token",
            "userinfo_endpoint": f"{base}/oauth2/userinfo",
            "revocation_endpoint": f"{base}/oauth2/revoke",
            "introspection_endpoint": f"{base}/oauth2/introspect",
            "end_session_endpoint": f"{base}/oauth2/logout",
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "scopes_supported": list(relying_parties.SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algorithms,
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr", "sid", "azp",
                                 "at_hash", "email", "email_verified", "given_name", "family_name", "name",
                                 "updated_at", "workspace_id", "organization_id", "workspace_role"],
            "acr_values_supported": ["1", "2"],
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "authorization_response_iss_parameter_supported": True,
        }
