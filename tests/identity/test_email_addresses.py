"""Which email addresses identity takes: only those the notifier can mail (shared/addresses.py).

Each address refused here used to get 201 and an account whose verification mail was dead-lettered,
so it could never be verified. An internationalised domain is taken in its ASCII (punycode) form.
"""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, update

from services.identity.models import Account
from tests.conftest import AuthActions, assert_problem

UNMAILABLE = {
    "accented local part": "josé@example.com",
    "quoted local part": '"ada lovelace"@example.com',
    "quoted local part without spaces": '"ada"@example.com',
    "IP-literal domain": "ada@[192.0.2.1]",
    "IPv6-literal domain": "ada@[IPv6:2001:db8::1]",
    "65-character local part": "a" * 65 + "@example.com",
    "full-width a": "\uff41norm@example.com",
    "dotless i": "\u0131norm@example.com",
    "full-width domain": "norm@\uff45xample.com",
    "Kelvin sign (lower-cases to k)": "\u212anorm@example.com",
    "domain without a dot": "ada@localhost",
    "header injection": "ada@example.com\r\nBcc: victim@example.com",
    "trailing line break": "ada@example.com\n",
    "NEL": "ada@example.com\x85",
}


def sign_up(client, email: str):
    return client.post("/v1/accounts", json={"email": email, "password": AuthActions.PASSWORD,
                                             "first_name": "Ada", "last_name": "Lovelace"})


def assert_refused_address(response) -> str:
    body = assert_problem(response, 422, "validation_failed")
    assert list(body["errors"]) == ["email"]
    [message] = body["errors"]["email"]
    assert message.endswith(".") and len(message) > 20, message  # says why, as a sentence
    return message


@pytest.mark.parametrize("address", UNMAILABLE.values(), ids=UNMAILABLE.keys())
def test_sign_up_refuses_an_address_the_notifier_cannot_mail(client, outbox, address):
    assert_refused_address(sign_up(client, address))

    assert outbox.events() == []


def test_the_refusal_says_why(client):
    assert "@-sign" in assert_refused_address(sign_up(client, "josé@example.com"))
    assert "too long" in assert_refused_address(sign_up(client, "a" * 65 + "@example.com"))
    assert "look-alike" in assert_refused_address(sign_up(client, "\uff41norm@example.com"))
    assert "line breaks" in assert_refused_address(sign_up(client, "ada@example.com\r\nBcc: x@example.com"))


@pytest.mark.parametrize("address", UNMAILABLE.values(), ids=UNMAILABLE.keys())
@pytest.mark.parametrize("path", ["/v1/email-verifications", "/v1/password-resets"])
def test_mail_requests_refuse_an_address_the_notifier_cannot_mail(client, outbox, path, address):
    assert_refused_address(client.post(path, json={"email": address}))


def test_look_alikes_make_no_second_account(client):
    assert sign_up(client, "anorm@example.com").status_code == 201

    for look_alike in ("\uff41norm@example.com", "\u0131norm@example.com", "anorm@\uff45xample.com"):
        assert_refused_address(sign_up(client, look_alike))


def test_64_characters_before_the_at_sign_are_accepted(client):
    address = "a" * 64 + "@example.com"

    assert sign_up(client, address).json["email"] == address


def test_an_internationalised_domain_is_stored_and_mailed_in_ascii(client, outbox):
    response = sign_up(client, "  Ada@Bücher.DE ")

    assert response.status_code == 201, response.json
    assert response.json["email"] == "ada@xn--bcher-kva.de"
    assert outbox.last("identity.account.registered")["data"]["email"] == "ada@xn--bcher-kva.de"
    assert outbox.last("identity.email_verification.requested")["data"]["email"] == "ada@xn--bcher-kva.de"


def test_both_forms_of_an_internationalised_domain_are_one_account(auth):
    auth.verified_account("ada@bücher.de")

    assert_problem(sign_up(auth.client, "ada@xn--bcher-kva.de"), 409, "email_taken")
    assert auth.sign_in("ada@xn--bcher-kva.de").status_code == 200
    assert auth.sign_in("ADA@BÜCHER.DE").status_code == 200


def test_resend_finds_the_account_by_either_form(client, outbox, clock):
    sign_up(client, "ada@xn--bcher-kva.de")
    before = len(outbox.events("identity.email_verification.requested"))

    assert client.post("/v1/email-verifications", json={"email": "Ada@bücher.de"}).status_code == 202

    assert len(outbox.events("identity.email_verification.requested")) == before + 1


def test_an_account_stored_before_the_policy_still_signs_in(auth, identity_db):
    """Addresses taken before this policy stay readable: sign-in looks them up as they were stored."""
    auth.verified_account("jose@example.com")
    engine = create_engine(identity_db)
    try:
        with engine.begin() as conn:
            conn.execute(update(Account).where(Account.email == "jose@example.com").values(email="josé@example.com"))
    finally:
        engine.dispose()

    response = auth.sign_in(" JOSÉ@example.com")

    assert response.status_code == 200, response.json
    me = auth.client.get("/v1/me", headers={"Authorization": f"Bearer {response.json['access_token']}"})
    assert me.json["email"] == "josé@example.com"


def test_sign_in_still_refuses_a_line_break_in_the_address(client):
    response = client.post("/v1/sessions", json={"email": "ada@example.com\r\nBcc: x@example.com",
                                                 "password": AuthActions.PASSWORD})

    assert_refused_address(response)
