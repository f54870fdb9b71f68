"""Tenancy's configuration, read once from the environment."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared import config


@dataclass(frozen=True)
class Settings:
    app_env: str
    database_url: str
    broker_url: str
    var_dir: Path
    identity_url: str
    issuer: str
    audience: str
    client_id: str
    client_secret: str
    default_workspace_name: str
    invitation_ttl: int
    invitation_accept_url: str
    invitations_per_inviter_per_hour: int
    invitations_per_workspace_per_day: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Settings":
        public_url = config.identity_public_url(env)
        production = config.app_env(env) == "production"
        return cls(
            app_env=config.app_env(env),
            database_url=config.database_url(env, "TENANCY_DATABASE_URL", "tenancy"),
            broker_url=config.broker_url(env),
            var_dir=config.var_dir(env),
            identity_url=config.url(env, "IDENTITY_INTERNAL_URL", public_url, ("http", "https")),
            issuer=config.url(env, "IDENTITY_ISSUER", public_url, ("http", "https")),
            audience=config.text(env, "ACCESS_TOKEN_AUDIENCE", "threshold"),
            client_id=config.text(env, "TENANCY_CLIENT_ID", "tenancy"),
            client_secret=config.secret(env, "TENANCY_CLIENT_SECRET", production),
            default_workspace_name=config.text(env, "DEFAULT_WORKSPACE_NAME", "My Workspace"),
            invitation_ttl=config.integer(env, "INVITATION_TTL", 7 * 86400, minimum=300),
            invitation_accept_url=_invitation_accept_url(env, production),
            invitations_per_inviter_per_hour=config.integer(env, "INVITATIONS_PER_INVITER_PER_HOUR", 20, minimum=1),
            invitations_per_workspace_per_day=config.integer(env, "INVITATIONS_PER_WORKSPACE_PER_DAY", 50, minimum=1),
        )


def _invitation_accept_url(env: Mapping[str, str], production: bool) -> str:
    """INVITATION_ACCEPT_URL: the product's page that accepts an invitation (it gets `?invitation=…&token=…`
    and calls POST /v1/invitations/{id}/accept). Required in production; in development it defaults to
    tenancy's /docs, a page that answers, where the accept operation can be tried with the token."""
    if production:
        return config.url(env, "INVITATION_ACCEPT_URL", None, ("http", "https"))
    return config.url(env, "INVITATION_ACCEPT_URL", f"{config.local_url(env, 'tenancy')}/docs", ("http", "https"))
