"""Web's configuration, read once from the environment into a frozen object."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared import config


@dataclass(frozen=True)
class Settings(config.ServiceSettings):
    public_url: str
    identity_url: str
    identity_public_url: str
    tenancy_url: str
    client_id: str
    client_secret: str
    secret_key: str
    session_ttl: int
    product_name: str
    product_url: str
    password_min_length: int
    resend_cooldown: int
    upstream_timeout: int
    proxy_hops: int
    providers: tuple[tuple[str, str], ...]

    @property
    def secure_cookies(self) -> bool:
        return self.app_env == "production" or self.public_url.startswith("https://")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        common = config.ServiceSettings.common(env, "web")
        identity_public = config.identity_public_url(env)
        product_url = env.get("PRODUCT_URL", "").strip()
        if product_url and "{workspace_id}" not in product_url:
            raise config.ConfigError("PRODUCT_URL", "must contain {workspace_id}, e.g. https://app.example.com/{workspace_id}")
        if product_url:
            config.url({"PRODUCT_URL": product_url.replace("{workspace_id}", "x")}, "PRODUCT_URL", "",
                       ("http", "https"))
        return cls(
            **common,
            public_url=config.url(env, "WEB_PUBLIC_URL", "http://127.0.0.1:8000", ("http", "https")),
            identity_url=config.url(env, "IDENTITY_INTERNAL_URL", identity_public, ("http", "https")),
            identity_public_url=identity_public,
            tenancy_url=config.url(env, "TENANCY_INTERNAL_URL", config.local_url(env, "tenancy"), ("http", "https")),
            client_id=config.text(env, "WEB_CLIENT_ID", "web"),
            client_secret=config.secret(env, "WEB_CLIENT_SECRET", common["app_env"] == "production"),
            secret_key=config.secret(env, "SECRET_KEY", common["app_env"] == "production"),
            session_ttl=config.integer(env, "WEB_SESSION_TTL", 30 * 86400, minimum=300),
            product_name=config.text(env, "PRODUCT_NAME", "Threshold"),
            product_url=product_url,
            password_min_length=config.integer(env, "PASSWORD_MIN_LENGTH", 6, minimum=1, maximum=128),
            resend_cooldown=config.integer(env, "EMAIL_RESEND_COOLDOWN", 60),
            upstream_timeout=config.integer(env, "WEB_UPSTREAM_TIMEOUT", 10, minimum=1, maximum=60),
            proxy_hops=config.integer(env, "PROXY_HOPS", 0, maximum=5),
            providers=_providers(env),
        )


def _providers(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """(name, display name) of each provider in identity's OIDC_PROVIDERS (identity validates the rest)."""
    providers = []
    for name, entry in config.json_object(env, "OIDC_PROVIDERS").items():
        label = entry.get("display_name") if isinstance(entry, dict) else None
        if not (isinstance(label, str) and label):
            label = name.replace("_", " ").replace("-", " ").title()
        providers.append((name, label))
    return tuple(providers)
