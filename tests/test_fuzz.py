"""Schemathesis against each service's own OpenAPI document: no input may produce a 500, and every
error is a problem+json document.

The operations are driven with Hypothesis directly (schemathesis's pytest plugin does not load under
the pytest in our lock file).
"""
from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import bearer

EXAMPLES_PER_OPERATION = 25


#: Routes a browser opens (not an API client): their errors are HTML pages.
BROWSER_ROUTES = ("/v1/oidc/{provider}/callback", "/oauth2/authorize", "/oauth2/logout")
#: The OpenID Provider's back channel answers OAuth clients in RFC 6749's JSON (the contract), not problem+json.
OAUTH_ROUTES = ("/oauth2/token", "/oauth2/revoke", "/oauth2/introspect")


def problem_json_errors(ctx, response, case):
    """Every 4xx and 5xx is application/problem+json with a code (an HTML page on browser routes)."""
    if response.status_code >= 400:
        content_type = response.headers.get("Content-Type", response.headers.get("content-type", ""))
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        if case.operation.path in BROWSER_ROUTES and response.status_code < 500:
            assert content_type.startswith("text/html"), (case.path, response.status_code, content_type)
            return
        if case.operation.path in OAUTH_ROUTES and response.status_code < 500:
            assert content_type.startswith("application/json"), (case.path, response.status_code, content_type)
            assert "error" in response.json()
            return
        assert content_type.startswith("application/problem+json"), (case.path, response.status_code, content_type)
        assert "code" in response.json()


def fuzz(app, headers: dict) -> list[str]:
    """Run every operation of the app's OpenAPI; returns the operations exercised."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    exercised = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def run(case):
            case.call_and_validate(headers=headers, checks=[not_a_server_error, problem_json_errors])

        run()
        exercised.append(f"{operation.method.upper()} {operation.path}")
    return exercised


def test_identity_never_errors(identity_app, auth):
    _account, tokens = auth.verified_account("fuzz@example.com")
    exercised = fuzz(identity_app, bearer(tokens))
    assert "POST /v1/accounts" in exercised and "GET /v1/me" in exercised


def test_tenancy_never_errors(tenancy_app, people, tenants):
    owner = people.new("fuzz@example.com")
    tenants.organization(owner)
    exercised = fuzz(tenancy_app, owner["headers"])
    assert "POST /v1/organizations" in exercised and "PATCH /v1/workspaces/{workspace_id}" in exercised
