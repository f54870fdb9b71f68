"""Identity's configuration, read once from the environment into a frozen object."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.identity import oidc, relying_parties
from shared import config


@dataclass(frozen=True)
class Settings(config.ServiceSettings):
    public_url: str
    links_url: str
    issuer: str
    audience: str
    secret_key: str
    access_token_ttl: int
    refresh_token_ttl: int
    password_min_length: int
    email_verification_ttl: int
    password_reset_ttl: int
    resend_cooldown: int
    resend_hourly_cap: int
    sign_in_free_failures: int
    sign_in_base_delay: int
    sign_in_max_delay: int
    ip_rate_limit: int
    proxy_hops: int
    key_reload_interval: int
    key_activation_delay: int
    totp_keys: tuple[str, ...]
    mfa_issuer: str
    mfa_token_ttl: int
    mfa_max_failures: int
    service_clients: dict
    oidc_providers: dict
    allowed_return_urls: tuple
    oidc_clients: dict  # the OpenID Provider's clients by id (relying_parties.RelyingParty)
    web_public_url: str  # the hosted pages (services/web): where /oauth2/authorize sends a person to sign in

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        common = config.ServiceSettings.common(env, "identity")
        production = common["app_env"] == "production"
        public_url = config.identity_public_url(env)
        return cls(
            **common,
            public_url=public_url,
            links_url=config.url(env, "WEB_PUBLIC_URL", public_url, ("http", "https")),
            issuer=config.url(env, "IDENTITY_ISSUER", public_url, ("http", "https")),
            audience=config.text(env, "ACCESS_TOKEN_AUDIENCE", "threshold"),
            secret_key=config.secret(env, "SECRET_KEY", production),
            access_token_ttl=config.integer(env, "ACCESS_TOKEN_TTL", 900, minimum=60, maximum=86400),
            refresh_token_ttl=config.integer(env, "REFRESH_TOKEN_TTL", 30 * 86400, minimum=300),
            password_min_length=config.integer(env, "PASSWORD_MIN_LENGTH", 6, minimum=1, maximum=128),
            email_verification_ttl=config.integer(env, "EMAIL_VERIFICATION_TTL", 86400, minimum=300),
            password_reset_ttl=config.integer(env, "PASSWORD_RESET_TTL", 3600, minimum=300),
            resend_cooldown=config.integer(env, "EMAIL_RESEND_COOLDOWN", 60),
            resend_hourly_cap=config.integer(env, "EMAIL_RESEND_HOURLY_CAP", 5, minimum=1),
            sign_in_free_failures=config.integer(env, "SIGN_IN_FREE_FAILURES", 5, minimum=1),
            sign_in_base_delay=config.integer(env, "SIGN_IN_BASE_DELAY", 30, minimum=1),
            sign_in_max_delay=config.integer(env, "SIGN_IN_MAX_DELAY", 900, minimum=1),
            ip_rate_limit=config.integer(env, "IP_RATE_LIMIT_PER_MINUTE", 60, minimum=1),
            proxy_hops=config.integer(env, "PROXY_HOPS", 0, maximum=5),
            key_reload_interval=config.integer(env, "SIGNING_KEY_RELOAD_INTERVAL", 60, minimum=1),
            key_activation_delay=config.integer(env, "SIGNING_KEY_ACTIVATION_DELAY", 180),
            totp_keys=_totp_keys(env, production),
            mfa_issuer=config.text(env, "MFA_ISSUER_NAME", "Threshold"),
            mfa_token_ttl=config.integer(env, "MFA_TOKEN_TTL", 300, minimum=30, maximum=1800),
            mfa_max_failures=config.integer(env, "MFA_MAX_FAILURES", 5, minimum=1, maximum=20),
            service_clients=_service_clients(env, production),
            oidc_providers=oidc.parse_providers(config.json_object(env, "OIDC_PROVIDERS")),
            allowed_return_urls=oidc.parse_return_urls(
                config.text(env, "ALLOWED_RETURN_URLS", "http://127.0.0.1:*,http://localhost:*")),
            oidc_clients=_oidc_clients(env, public_url, production),
            web_public_url=config.url(env, "WEB_PUBLIC_URL", "http://127.0.0.1:8000", ("http", "https")),
        )


def _oidc_clients(env: Mapping[str, str], public_url: str, production: bool) -> dict:
    """OIDC_CLIENTS, and what being an OpenID Provider asks of the URLs: the issuer is exactly
    IDENTITY_PUBLIC_URL (RPs compare it with the discovery URL they fetched), https except on loopback."""
    clients = relying_parties.parse_all(config.json_object(env, "OIDC_CLIENTS"), production=production)
    if clients and env.get("IDENTITY_ISSUER", "").strip() not in ("", public_url):
        raise config.ConfigError("IDENTITY_ISSUER", "must be unset or equal IDENTITY_PUBLIC_URL when OIDC_CLIENTS "
                                                    "are set: an OpenID Provider's issuer is its public URL")
    if clients and production and not relying_parties.secure_or_loopback(public_url):
        raise config.ConfigError("IDENTITY_PUBLIC_URL", "must be https (or a loopback host) when OIDC_CLIENTS are set")
    return clients


#: The scope of the service token with which the hosted pages read and complete authorization requests.
AUTH_REQUESTS_SCOPE = "auth-requests:complete"

#: Encrypts TOTP secrets when TOTP_ENCRYPTION_KEYS is unset. Development only: production refuses it.
DEVELOPMENT_TOTP_KEY = "ZGV2ZWxvcG1lbnQtb25seS10b3RwLWtleS0xMjM0NTY="


def _totp_keys(env: Mapping[str, str], production: bool) -> tuple[str, ...]:
    """Fernet keys, newest first: the first encrypts, every one decrypts (rotation)."""
    from cryptography.fernet import Fernet

    raw = env.get("TOTP_ENCRYPTION_KEYS", "").strip()
    keys = tuple(part.strip() for part in raw.split(",") if part.strip()) or (DEVELOPMENT_TOTP_KEY,)
    for key in keys:
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise config.ConfigError(
                "TOTP_ENCRYPTION_KEYS", "each key must be 32 url-safe base64-encoded bytes (python -c 'from "
                "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')") from None
    if production and DEVELOPMENT_TOTP_KEY in keys:
        raise config.ConfigError("TOTP_ENCRYPTION_KEYS",
                                 "is the development key; set real keys when APP_ENV=production")
    return keys


def _service_clients(env: Mapping[str, str], production: bool) -> dict:
    """SERVICE_CLIENTS: {"client_id": {"secret": "...", "scopes": ["accounts:read"]}}, registered by `migrate`.

    Development registers `tenancy` with the development secret, so `make run` works out of the box."""
    clients = config.json_object(env, "SERVICE_CLIENTS")
    if not clients and not production:
        clients = {"tenancy": {"secret": config.DEVELOPMENT_SECRET, "scopes": ["accounts:read"]},
                   "web": {"secret": config.DEVELOPMENT_SECRET, "scopes": [AUTH_REQUESTS_SCOPE]}}
    for client_id, entry in clients.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("secret"), str) \
                or not isinstance(entry.get("scopes", []), list):
            raise config.ConfigError("SERVICE_CLIENTS",
                                     f"{client_id!r} needs a \"secret\" string and a \"scopes\" list")
        if production and (entry["secret"] == config.DEVELOPMENT_SECRET or len(entry["secret"]) < 32):
            raise config.ConfigError("SERVICE_CLIENTS", f"{client_id!r} needs a real secret of 32+ characters")
    return clients
