"""Each service's OpenAPI document says what the service does: schemathesis runs every one of its checks
against every operation (positive and negative data), signed in with a real user token and, on identity,
with a real service token, and the run fails on any failure not listed in ACCEPTED with its reason.

Operations are driven with Hypothesis directly, as in tests/test_fuzz.py (schemathesis's pytest plugin
does not load under the pytest in our lock file)."""
from __future__ import annotations

from collections import defaultdict

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import Failure, FailureGroup

from tests.conftest import bearer
from tests.shared.test_service_tokens import service_token
from tests.test_service_surface import build

EXAMPLES_PER_OPERATION = 15

LINK_RULE = "Must not contain a web address or a domain name: mail would show it as a link."
#: Failures that are not the document's fault, as {(check, "METHOD /path" or "*", what the answer was:
#: the problem's code, or for validation_failed the first message): reason}.
ACCEPTED: dict[tuple[str, str, str], str] = {
    ("positive_data_acceptance", "*", "token_invalid"):
        "A string of the right length is not a token anyone was issued: 400, and no schema can list tokens.",
    ("positive_data_acceptance", "*", "not_found"):
        "An id of the right form that names nothing (or nothing the caller may open) is 404 by design.",
    ("positive_data_acceptance", "*", LINK_RULE):
        "Names that read as links (`evil.com`) are refused; JSON Schema cannot say it (the control-character "
        "part of the rule is the published `pattern`).",
    ("positive_data_acceptance", "*", "Must not be blank."):
        "A name of only spaces or invisible characters is refused; JSON Schema's pattern cannot say it simply.",
    ("positive_data_acceptance", "*", "The cursor is not one this list gave out; start again without it."):
        "A cursor is opaque and signed: only one a previous page gave out is accepted.",
    ("positive_data_acceptance", "*", "Must not contain a NUL character."):
        "The request guard refuses NUL in every field of every route (shared/request_guard.py); JSON Schema would "
        "need a pattern on every string.",
    ("positive_data_acceptance", "*", "email"):
        "Addresses are checked as mailable (shared/addresses.py: reserved and special-use domains, lengths); "
        "the `email` format says less.",
    ("positive_data_acceptance", "*", "password"):
        "The password policy also refuses common passwords and the account's own address: not expressible.",
    ("positive_data_acceptance", "GET /v1/oidc/{provider}/callback", "*"):
        "A browser route: without the sign-in's cookie every answer is the HTML error page (documented).",
    ("positive_data_acceptance", "GET /oauth2/authorize", "*"):
        "An OpenID Provider route whose parameters are checked against the client registry (client_id, "
        "redirect_uri, PKCE, id_token_hint): no document can list registered clients, so a generated request is "
        "refused with the protocol's documented answer (an HTML page, or RFC 6749 JSON).",
    ("positive_data_acceptance", "POST /oauth2/authorize", "*"):
        "An OpenID Provider route whose parameters are checked against the client registry (client_id, "
        "redirect_uri, PKCE, id_token_hint): no document can list registered clients, so a generated request is "
        "refused with the protocol's documented answer (an HTML page, or RFC 6749 JSON).",
    ("positive_data_acceptance", "GET /oauth2/logout", "*"):
        "An OpenID Provider route whose parameters are checked against the client registry (client_id, "
        "redirect_uri, PKCE, id_token_hint): no document can list registered clients, so a generated request is "
        "refused with the protocol's documented answer (an HTML page, or RFC 6749 JSON).",
    ("positive_data_acceptance", "POST /oauth2/logout", "*"):
        "An OpenID Provider route whose parameters are checked against the client registry (client_id, "
        "redirect_uri, PKCE, id_token_hint): no document can list registered clients, so a generated request is "
        "refused with the protocol's documented answer (an HTML page, or RFC 6749 JSON).",
    ("positive_data_acceptance", "POST /oauth2/token", "*"):
        "An OpenID Provider route whose parameters are checked against the client registry (client_id, "
        "redirect_uri, PKCE, id_token_hint): no document can list registered clients, so a generated request is "
        "refused with the protocol's documented answer (an HTML page, or RFC 6749 JSON).",
    ("negative_data_rejection", "*", "unknown query parameter"):
        "Query parameters a route does not take are ignored, as HTTP APIs do (a cache-buster, a tracker).",
    ("not_a_server_error", "GET /readyz", "not_ready"):
        "Readiness is 503 by design while a dependency is down (here the notifier's consumer is not running).",
}


def accepted(check: str, operation: str, what: str) -> bool:
    return any(key in ACCEPTED for key in ((check, operation, what), (check, "*", what), (check, operation, "*")))


def what_was_answered(response) -> str:
    """The problem's code, or for a refused field its first message (a field named `email` or `password`
    stands for the address and password rules)."""
    try:
        body = response.json()
    except ValueError:  # not JSON: an HTML page
        return ""
    if not isinstance(body, dict):
        return ""
    for field, messages in (body.get("errors") or {}).items():
        if "email" in field or "password" in field:
            return "email" if "email" in field else "password"
        return messages[0] if isinstance(messages, list) and messages else str(messages)
    return str(body.get("code", ""))


def all_checks() -> list:
    load_all_checks()
    return [check for check in CHECKS.get_all() if callable(check) and not isinstance(check, type)]


def send_and_check(case, headers: dict, checks: list, failures: dict) -> None:
    """Send the case, run the checks on the answer, and record each failure that ACCEPTED does not list."""
    label = f"{case.operation.method.upper()} {case.operation.path}"
    response = case.call(headers=headers)
    try:
        case.validate_response(response, checks=checks, headers=headers)
    except (Failure, FailureGroup) as error:
        documented = {parameter.name for parameter in case.operation.query}
        unknown = isinstance(case.query, dict) and set(case.query) - documented
        what = "unknown query parameter" if unknown else what_was_answered(response)
        answer = f"{case.query} {case.body!r:.200} -> {response.status_code} {response.text[:200]}"
        for failure in getattr(error, "exceptions", [error]):
            name = failure.checks[0] if failure.checks else type(failure).__name__
            if not accepted(name, label, what):
                failures[(name, label)].append(f"{failure.title} ({answer})")


def run(app, headers: dict, operations: set[str] | None = None) -> tuple[set[str], dict]:
    """Every operation of the app's document (or those in `operations`) under every check; returns the
    operations run and the unaccepted failures as {(check, operation): [titles]}."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    checks = all_checks()
    exercised, failures = set(), defaultdict(list)
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if operations is not None and label not in operations:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                      database=None)
            def drive(case):
                send_and_check(case, headers, checks, failures)

            try:
                drive()
            except Unsatisfiable:  # nothing to make invalid: no parameters and no body
                assert mode is GenerationMode.NEGATIVE, label
        exercised.add(label)
    return exercised, {key: sorted(set(titles))[:2] for key, titles in failures.items()}


def assert_none(failures: dict) -> None:
    if failures:
        pytest.fail("\n".join(f"{check} on {operation}: {titles}" for (check, operation), titles in failures.items()))


def test_identity_as_a_signed_in_person(identity_app, auth):
    _account, tokens = auth.verified_account("conformance@example.com")
    exercised, failures = run(identity_app, bearer(tokens))
    assert {"POST /v1/accounts", "GET /v1/me", "PATCH /v1/me"} <= exercised
    assert_none(failures)


def test_identity_internal_routes_with_a_service_token(identity_app, client):
    exercised, failures = run(identity_app, bearer(service_token(client)), {"GET /internal/v1/accounts"})
    assert exercised == {"GET /internal/v1/accounts"}
    assert_none(failures)


def test_tenancy_as_a_signed_in_person(tenancy_app, people, tenants):
    owner = people.new("conformance@example.com")
    tenants.organization(owner)
    exercised, failures = run(tenancy_app, owner["headers"])
    assert {"GET /v1/organizations", "PATCH /v1/workspaces/{workspace_id}"} <= exercised
    assert_none(failures)


def test_notifier(backend, databases, tmp_path):
    url = databases.fresh(backend, "services.notifier")
    try:
        exercised, failures = run(build("notifier", url, tmp_path), {})
    finally:
        databases.drop(url)
    assert {"GET /healthz", "GET /readyz", "GET /readyz/serving", "GET /metrics"} <= exercised
    assert_none(failures)
