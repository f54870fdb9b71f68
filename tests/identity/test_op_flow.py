"""Threshold as an OpenID Provider, driven by authlib's client (a real RP library) against a live
identity on loopback; the hosted pages' part is played over identity's internal routes."""
from __future__ import annotations

import logging

from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2 import rfc9207
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from tests.identity.op_support import RP, SHOP_SECRET, query_of


def shop(scope: str = "openid email profile") -> OAuth2Session:
    return OAuth2Session(client_id="shop", client_secret=SHOP_SECRET, scope=scope, redirect_uri=f"{RP}/shop/cb",
                         code_challenge_method="S256")


def verify_id_token(identity, id_token: str, *, client_id: str, nonce: str, access_token: str,
                    algorithm: str = "ES256") -> dict:
    keys = KeySet.import_key_set(identity.get("/.well-known/jwks.json").json())
    decoded = jose_jwt.decode(id_token, keys, algorithms=[algorithm])
    claims = CodeIDToken(decoded.claims, decoded.header,
                         {"iss": {"essential": True, "value": identity.url},
                          "aud": {"essential": True, "value": client_id}},
                         {"nonce": nonce, "access_token": access_token, "client_id": client_id})
    claims.validate(leeway=5)
    return dict(claims)


def code_flow(identity, web, person, client: OAuth2Session, **authorize):
    """authorize -> hosted pages -> code -> tokens, all through the RP library; returns (token, nonce, back)."""
    metadata = identity.discovery()
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = client.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier,
                                                 nonce=nonce, **authorize)
    back = web.sign_in(url, person)
    assert query_of(back)["state"] == state
    token = client.fetch_token(metadata["token_endpoint"], authorization_response=back, code_verifier=verifier)
    return token, nonce, back


def test_discovery_passes_authlib_validation_and_names_the_public_url_as_issuer(identity):
    metadata = identity.discovery()
    OpenIDProviderMetadata(metadata).validate(metadata_classes=[rfc9207.AuthorizationServerMetadata])
    assert metadata["issuer"] == identity.url
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert set(metadata["id_token_signing_alg_values_supported"]) == {"ES256", "RS256"}


def test_authlib_signs_a_person_in_with_code_pkce_and_a_verified_id_token(identity, web, person):
    token, nonce, back = code_flow(identity, web, person, shop())
    assert back.startswith(f"{RP}/shop/cb?")
    assert query_of(back)["iss"] == identity.url  # RFC 9207
    claims = verify_id_token(identity, token["id_token"], client_id="shop", nonce=nonce,
                             access_token=token["access_token"])
    assert claims["sub"] == person.id and claims["email"] == "ada@example.com" and claims["nonce"] == nonce
    assert claims["amr"] == ["pwd"] and claims["acr"] == "1" and isinstance(claims["auth_time"], int)
    assert claims["sid"] and "refresh_token" not in token  # no offline_access asked
    userinfo = identity.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json() == {"sub": person.id, "email": "ada@example.com", "email_verified": True,
                               "given_name": "Ada", "family_name": "Lovelace", "name": "Ada Lovelace",
                               "updated_at": userinfo.json()["updated_at"]}


def test_the_access_token_follows_rfc_9068_with_client_id_and_scope(identity, web, person):
    token, _, _ = code_flow(identity, web, person, shop())
    decoded = jose_jwt.decode(token["access_token"], KeySet.import_key_set(
        identity.get("/.well-known/jwks.json").json()), algorithms=["ES256"])
    assert decoded.header["typ"] == "at+jwt"
    claims = decoded.claims
    assert claims["client_id"] == "shop" and claims["scope"] == "openid email profile"
    assert claims["iss"] == identity.url and claims["sub"] == person.id and claims["aud"] == "threshold"
    assert {"exp", "iat", "jti"} <= claims.keys()


def test_no_token_or_code_reaches_a_log_line_even_at_debug(identity, web, person, caplog):
    caplog.set_level(logging.DEBUG)
    token, _, back = code_flow(identity, web, person, shop("openid offline_access"))
    secrets = [token["access_token"], token["refresh_token"], token["id_token"], query_of(back)["code"]]
    assert caplog.records and not [secret for secret in secrets if secret in caplog.text]


def test_authorize_and_userinfo_also_take_post(identity, web, person):
    token, _, _ = code_flow(identity, web, person, shop())
    form = {"response_type": "code", "client_id": "shop", "redirect_uri": f"{RP}/shop/cb", "scope": "openid"}
    response = identity.post("/oauth2/authorize", data=form)
    assert response.status_code == 302 and web.read(web.request_id(response.headers["Location"])).status_code == 200
    userinfo = identity.post("/oauth2/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert userinfo.status_code == 200 and userinfo.json()["sub"] == person.id


def test_userinfo_refuses_first_party_tokens_and_missing_ones(identity, person):
    first_party = identity.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {person.tokens['access_token']}"})
    assert first_party.status_code == 401 and first_party.headers["WWW-Authenticate"].startswith("Bearer")
    assert identity.get("/oauth2/userinfo").status_code == 401
