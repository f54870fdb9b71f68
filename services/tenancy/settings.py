"""Tenancy's configuration, read once from the environment."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared import config


@dataclass(frozen=True)
class Settings(config.ServiceSettings):
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
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        public_url = config.identity_public_url(env)
        common = config.ServiceSettings.common(env, "tenancy")
        production = common["app_env"] == "production"
        return cls(
            **common,
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
    """INVITATION_ACCEPT_URL: the page that accepts an invitation (it gets `?invitation=…&token=…` and calls
    POST /v1/invitations/{id}/accept). By default the hosted pages' accept page when WEB_PUBLIC_URL is set;
    without either, production refuses to start, and development uses tenancy's /docs, a page that answers,
    where the accept operation can be tried with the token."""
    if env.get("WEB_PUBLIC_URL", "").strip():
        default = config.url(env, "WEB_PUBLIC_URL", "", ("http", "https")) + "/invitations/accept"
    elif production:
        default = None
    else:
        default = f"{config.local_url(env, 'tenancy')}/docs"
    return config.url(env, "INVITATION_ACCEPT_URL", default, ("http", "https"))
