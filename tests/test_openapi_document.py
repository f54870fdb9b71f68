"""What the OpenAPI documents say, checked against what the code enforces: security per operation, the
Problem schema on every error, limits from the settings and validators, PATCH bodies that are optional
as the views treat them."""
from __future__ import annotations

import re

from shared import names
from tests.conftest import bearer

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
HTML = {"text/html": {"schema": {"type": "string"}}}
OAUTH_ERROR = {"application/json": {"schema": {"type": "object", "properties": {
    "error": {"type": "string"}, "error_description": {"type": "string"}}}}}
#: Protocol routes whose own errors keep the protocol's shape (CONTRACT): an HTML page on a browser route, RFC
#: 6749's JSON on the OpenID Provider's back channel. Errors the service's edge answers are problem+json there too.
PROTOCOL = {"GET /v1/oidc/{provider}/callback": HTML, "GET /oauth2/authorize": HTML, "POST /oauth2/authorize": HTML,
            "GET /oauth2/logout": HTML, "POST /oauth2/logout": HTML, "POST /oauth2/token": OAUTH_ERROR,
            "POST /oauth2/revoke": OAUTH_ERROR, "POST /oauth2/introspect": OAUTH_ERROR}


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield f"{method.upper()} {path}", operation


def test_every_error_is_documented_as_a_problem_and_every_protected_route_as_such(identity_app, tenancy):
    for spec in (identity_app.test_client().get("/openapi.json").json, tenancy.get("/openapi.json").json):
        problem = spec["components"]["schemas"]["Problem"]
        assert problem["properties"]["status"]["type"] == "integer"
        assert problem["properties"]["code"]["type"] == "string"
        assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
        for label, operation in operations(spec):
            assert "default" not in operation["responses"], label
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert response["content"] in (PROBLEM, PROTOCOL.get(label, PROBLEM)), (label, status)
                if status in ("429", "503"):
                    assert "Retry-After" in response["headers"], (label, status)
            if operation.get("security"):
                assert "401" in operation["responses"], label


def test_security_is_declared_per_operation(identity_app, tenancy):
    identity = dict(operations(identity_app.test_client().get("/openapi.json").json))
    assert identity["GET /v1/me"]["security"] == [{"bearer": []}]
    assert identity["POST /v1/me/mfa/totp"]["security"] == [{"bearer": []}]
    assert identity["GET /internal/v1/accounts"]["security"] == [{"service_token": ["accounts:read"]}]
    assert "security" not in identity["POST /v1/accounts"] and "security" not in identity["POST /v1/sessions"]
    public = {"POST /v1/invitations/{invitation_id}/preview"}  # the mail's token is the credential
    for label, operation in operations(tenancy.get("/openapi.json").json):
        if label in public:
            assert "security" not in operation, label
        elif label.split()[1].startswith("/v1/"):
            assert operation["security"] == [{"bearer": []}], label


def test_password_and_name_limits_are_the_enforced_ones(make_identity_app, auth):
    app = make_identity_app(PASSWORD_MIN_LENGTH=10)
    schemas = app.test_client().get("/openapi.json").json["components"]["schemas"]
    for schema, field in (("SignUp", "password"), ("PasswordResetConfirm", "new_password"),
                          ("PasswordChange", "new_password")):
        assert (schemas[schema]["properties"][field]["minLength"], schemas[schema]["properties"][field]["maxLength"]) \
            == (10, 128), schema
    client = app.test_client()
    body = {"email": "ten@example.com", "first_name": "Ada", "last_name": "Lovelace"}
    assert client.post("/v1/accounts", json={**body, "password": "nine-char"}).status_code == 422
    assert client.post("/v1/accounts", json={**body, "password": "x" * 129}).status_code == 422
    assert client.post("/v1/accounts", json={**body, "password": "ten chars!"}).status_code == 201

    first_name = schemas["SignUp"]["properties"]["first_name"]
    assert (first_name["pattern"], first_name["minLength"], first_name["maxLength"]) == (names.PATTERN, 1, 100)
    for control in ("\x07", "\u202e", "\u2028", "\x85"):
        assert not re.fullmatch(first_name["pattern"], f"Ada{control}")
        response = client.post("/v1/accounts", json={**body, "email": "ctl@example.com", "first_name": f"Ada{control}",
                                                      "password": "ten chars!"})
        assert response.status_code == 422, repr(control)
    assert re.fullmatch(first_name["pattern"], "Zoë O'Brien-Łukasz 2.0")


def test_patch_bodies_are_optional_as_the_views_treat_them(identity_app, auth, tenancy, people, tenants):
    _account, tokens = auth.verified_account("patch@example.com")
    identity_spec = identity_app.test_client().get("/openapi.json").json
    assert identity_spec["paths"]["/v1/me"]["patch"]["requestBody"]["required"] is False
    assert identity_app.test_client().patch("/v1/me", headers=bearer(tokens)).status_code == 200

    owner = people.new("owner@example.com")
    created = tenants.organization(owner)
    tenancy_spec = tenancy.get("/openapi.json").json
    organization_id = created["organization"]["id"]
    for path, concrete in (("/v1/organizations/{organization_id}", f"/v1/organizations/{organization_id}"),
                           ("/v1/workspaces/{workspace_id}", f"/v1/workspaces/{created['workspace']['id']}")):
        assert tenancy_spec["paths"][path]["patch"]["requestBody"]["required"] is False
        assert tenancy.patch(concrete, headers=owner["headers"]).status_code == 200


def test_the_notifier_documents_its_routes(tmp_path, databases, backend):
    from tests.test_service_surface import build

    url = databases.fresh(backend, "services.notifier")
    try:
        spec = build("notifier", url, tmp_path).test_client().get("/openapi.json").json
    finally:
        databases.drop(url)
    assert set(spec["paths"]) == {"/healthz", "/readyz", "/readyz/serving", "/metrics"}
    metrics_response = spec["paths"]["/metrics"]["get"]["responses"]["200"]
    assert metrics_response["content"] == {"text/plain": {"schema": {"type": "string"}}}
