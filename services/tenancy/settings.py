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
        identity_url = config.url(env, "IDENTITY_INTERNAL_URL",
                                  config.url(env, "IDENTITY_PUBLIC_URL", "http://127.0.0.1:8001", ("http", "https")),
                                  ("http", "https"))
        common = config.ServiceSettings.common(env, "tenancy", port=8002)
        return cls(
            **common,
            identity_url=identity_url,
            issuer=config.url(env, "IDENTITY_ISSUER",
                              config.url(env, "IDENTITY_PUBLIC_URL", "http://127.0.0.1:8001", ("http", "https")),
                              ("http", "https")),
            audience=config.text(env, "ACCESS_TOKEN_AUDIENCE", "threshold"),
            client_id=config.text(env, "TENANCY_CLIENT_ID", "tenancy"),
            client_secret=config.secret(env, "TENANCY_CLIENT_SECRET", common["app_env"] == "production"),
            default_workspace_name=config.text(env, "DEFAULT_WORKSPACE_NAME", "My Workspace"),
            invitation_ttl=config.integer(env, "INVITATION_TTL", 7 * 86400, minimum=300),
            invitation_accept_url=config.url(env, "INVITATION_ACCEPT_URL", _accept_url_default(env), ("http", "https")),
            invitations_per_inviter_per_hour=config.integer(env, "INVITATIONS_PER_INVITER_PER_HOUR", 20, minimum=1),
            invitations_per_workspace_per_day=config.integer(env, "INVITATIONS_PER_WORKSPACE_PER_DAY", 50, minimum=1),
        )


def _accept_url_default(env: Mapping[str, str]) -> str:
    """The hosted pages' accept page when WEB_PUBLIC_URL is set; tenancy's own path otherwise."""
    if env.get("WEB_PUBLIC_URL", "").strip():
        return config.url(env, "WEB_PUBLIC_URL", "", ("http", "https")) + "/invitations/accept"
    return "http://127.0.0.1:8002/invitations/accept"
