"""Mail links open the hosted pages when WEB_PUBLIC_URL is set, and the services' own pages when not."""
from __future__ import annotations

from services.identity.settings import Settings as IdentitySettings
from services.tenancy.settings import Settings as TenancySettings


def test_identity_links_use_web_public_url_when_it_is_set(tmp_path):
    env = {"VAR_DIR": str(tmp_path), "IDENTITY_PUBLIC_URL": "https://id.example.com"}
    assert IdentitySettings.from_env(env).links_url == "https://id.example.com"
    assert IdentitySettings.from_env({**env, "WEB_PUBLIC_URL": "https://accounts.example.com/"}).links_url \
        == "https://accounts.example.com"


def test_tenancy_invitation_link_uses_web_public_url_unless_set_explicitly(tmp_path):
    env = {"VAR_DIR": str(tmp_path)}
    # without the hosted pages: tenancy's /docs, a page that answers (issue 15)
    assert TenancySettings.from_env(env).invitation_accept_url == "http://127.0.0.1:8002/docs"
    web = {**env, "WEB_PUBLIC_URL": "https://accounts.example.com"}
    assert TenancySettings.from_env(web).invitation_accept_url == "https://accounts.example.com/invitations/accept"
    explicit = {**web, "INVITATION_ACCEPT_URL": "https://app.example.com/join"}
    assert TenancySettings.from_env(explicit).invitation_accept_url == "https://app.example.com/join"
