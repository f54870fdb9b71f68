"""The first run (issue 15): URL defaults that follow the ports of the embedded default, an invitation
link that opens a page, a start banner whose URLs answer, and a JWKS that cannot be fetched answered as an
outage (503, Retry-After), not as a bad token (401)."""
from __future__ import annotations

import re

import pytest

from services.identity.settings import Settings as IdentitySettings
from services.tenancy.settings import Settings as TenancySettings
from services.web.settings import Settings as WebSettings
from shared import config
from tests.conftest import assert_problem

PORTS = {"IDENTITY_PORT": "9101", "TENANCY_PORT": "9102", "NOTIFIER_PORT": "9103"}


def test_identity_urls_follow_identity_port():
    settings = IdentitySettings.from_env({"APP_ENV": "test", **PORTS})
    assert settings.public_url == "http://127.0.0.1:9101"
    assert settings.issuer == "http://127.0.0.1:9101"


def test_tenancy_finds_identity_and_builds_invitation_links_on_the_configured_ports():
    settings = TenancySettings.from_env({"APP_ENV": "test", **PORTS})
    assert settings.identity_url == "http://127.0.0.1:9101"
    assert settings.issuer == "http://127.0.0.1:9101"
    assert settings.invitation_accept_url == "http://127.0.0.1:9102/docs"


def test_web_finds_identity_and_tenancy_on_the_configured_ports():
    settings = WebSettings.from_env({"APP_ENV": "test", **PORTS})
    assert (settings.identity_url, settings.identity_public_url, settings.tenancy_url) == (
        "http://127.0.0.1:9101", "http://127.0.0.1:9101", "http://127.0.0.1:9102")


def test_explicit_urls_win_over_the_port_defaults():
    settings = TenancySettings.from_env({"APP_ENV": "test", **PORTS, "IDENTITY_PUBLIC_URL": "https://id.example.com",
                                         "IDENTITY_INTERNAL_URL": "http://identity:8001",
                                         "INVITATION_ACCEPT_URL": "https://app.example.com/join"})
    assert (settings.issuer, settings.identity_url, settings.invitation_accept_url) == (
        "https://id.example.com", "http://identity:8001", "https://app.example.com/join")


def test_production_must_name_the_page_that_accepts_invitations():
    env = {"APP_ENV": "production", "TENANCY_CLIENT_SECRET": "s" * 40,
           "TENANCY_DATABASE_URL": "postgresql+psycopg://db/tenancy"}
    with pytest.raises(config.ConfigError, match="INVITATION_ACCEPT_URL"):
        TenancySettings.from_env(env)
    assert TenancySettings.from_env({**env, "INVITATION_ACCEPT_URL": "https://app.example.com/join"})


def test_the_default_invitation_link_opens_a_page(tenancy):
    path = TenancySettings.from_env({"APP_ENV": "test"}).invitation_accept_url.split("8002", 1)[1]
    response = tenancy.get(f"{path}?invitation=x&token=y")
    assert response.status_code == 200 and response.mimetype == "text/html"


def test_the_start_banner_prints_the_sign_up_page_and_the_docs_of_each_service_on_its_port(identity_app, tenancy):
    from services.run import banner

    urls = re.findall(r"http://\S+", banner(PORTS, "http://127.0.0.1:9100/sign-up"))
    assert urls == ["http://127.0.0.1:9100/sign-up", "http://127.0.0.1:9101/docs", "http://127.0.0.1:9102/docs",
                    "http://127.0.0.1:9103/docs"]
    for client in (identity_app.test_client(), tenancy):  # and what they point at answers
        assert client.get("/docs").status_code == 200


def test_a_jwks_that_cannot_be_fetched_is_503_with_retry_after_not_401(make_tenancy_app, people):
    ada = people.new("ada@example.com")
    cut_off = make_tenancy_app(IDENTITY_INTERNAL_URL="http://127.0.0.1:1").test_client()
    response = cut_off.get("/v1/organizations", headers=ada["headers"])
    assert_problem(response, 503, "dependency_unavailable")
    assert int(response.headers["Retry-After"]) >= 1


def test_a_token_from_a_key_the_issuer_does_not_publish_is_still_401(tenancy, identity_app):
    """The JWKS answers, and has no such key: the token is bad, not the network."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from jose import jwk

    from shared.jwt import sign

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    token = sign({"sub": "x", "iss": "http://127.0.0.1:8001", "aud": "threshold", "exp": 4102444800, "iat": 1},
                 jwk.construct(pem, "ES256"), "stranger", "ES256")
    response = tenancy.get("/v1/organizations", headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401, "invalid_token")
