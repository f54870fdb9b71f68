"""POST /v1/accounts: the Account it returns, email normalisation, validation and the events it records.

The password policy itself is covered in test_passwords.py.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.conftest import AuthActions, assert_problem

ACCOUNT_KEYS = {"id", "email", "first_name", "last_name", "email_verified", "mfa_enabled", "created_at"}
MISSING = object()


def sign_up_body(**changes) -> dict:
    body = {"email": "ada@example.com", "password": AuthActions.PASSWORD, "first_name": "Ada",
            "last_name": "Lovelace"}
    body.update(changes)
    return {name: value for name, value in body.items() if value is not MISSING}


def sign_up(client, **changes):
    return client.post("/v1/accounts", json=sign_up_body(**changes))


def test_sign_up_returns_an_unverified_account(client, clock):
    response = sign_up(client)

    assert response.status_code == 201
    account = response.json
    assert set(account) == ACCOUNT_KEYS
    assert account["email"] == "ada@example.com"
    assert (account["first_name"], account["last_name"]) == ("Ada", "Lovelace")
    assert account["email_verified"] is False
    assert account["mfa_enabled"] is False
    assert datetime.fromisoformat(account["created_at"]) == clock.now
    assert "password" not in response.get_data(as_text=True)


def test_email_is_trimmed_and_lower_cased(client, outbox):
    response = sign_up(client, email="  Ada.Lovelace@Example.COM ")

    assert response.status_code == 201
    assert response.json["email"] == "ada.lovelace@example.com"
    assert outbox.last("identity.account.registered")["data"]["email"] == "ada.lovelace@example.com"


@pytest.mark.parametrize("same_address", ["ada@example.com", "ADA@Example.Com", "  ada@example.com  "])
def test_an_address_can_only_sign_up_once(client, same_address):
    assert sign_up(client).status_code == 201

    assert_problem(sign_up(client, email=same_address, first_name="Eve"), 409, "email_taken")


def test_missing_fields_are_each_reported(client):
    body = assert_problem(client.post("/v1/accounts", json={}), 422, "validation_failed")

    assert set(body["errors"]) == {"email", "password", "first_name", "last_name"}


@pytest.mark.parametrize("changes, field", [
    ({"email": MISSING}, "email"),
    ({"email": "not-an-email"}, "email"),
    ({"email": "ada@example.com\r\nBcc: victim@example.com"}, "email"),
    ({"email": "ada@example.com\n"}, "email"),
    ({"first_name": "Ada\nBcc: victim@example.com"}, "first_name"),
    ({"last_name": "Love\x00lace"}, "last_name"),
    ({"last_name": "Love\x1blace"}, "last_name"),
    ({"first_name": ""}, "first_name"),
    ({"first_name": "A" * 101}, "first_name"),
    ({"password": MISSING}, "password"),
    ({"email_verified": True}, "email_verified"),
    ({"mfa_enabled": True}, "mfa_enabled"),
    ({"id": "00000000-0000-0000-0000-000000000000"}, "id"),
])
def test_invalid_bodies_are_refused_per_field(client, outbox, changes, field):
    body = assert_problem(sign_up(client, **changes), 422, "validation_failed")

    assert list(body["errors"]) == [field]
    assert body["errors"][field] and all(isinstance(message, str) for message in body["errors"][field])
    assert outbox.events() == []


def test_refused_sign_up_creates_no_account(client):
    assert sign_up(client, email_verified=True).status_code == 422

    created = sign_up(client)
    assert created.status_code == 201
    assert created.json["email_verified"] is False


def test_sign_up_enforces_the_password_policy(client, outbox):
    body = assert_problem(sign_up(client, password="password"), 422, "validation_failed")

    assert list(body["errors"]) == ["password"]
    assert outbox.events() == []


def test_sign_up_records_the_registered_event(client, outbox):
    account = sign_up(client).json

    event = outbox.last("identity.account.registered")
    assert event["data"] == {"account_id": account["id"], "email": "ada@example.com", "first_name": "Ada",
                             "last_name": "Lovelace"}
    assert event["specversion"] == "1.0"
    assert event["datacontenttype"] == "application/json"
    assert event["source"] and event["id"] and event["time"]


def test_sign_up_records_the_verification_mail_with_the_account(client, outbox, clock):
    account = sign_up(client).json

    event = outbox.last("identity.email_verification.requested")
    data = event["data"]
    assert set(data) == {"account_id", "email", "first_name", "verification_url", "expires_at"}
    assert (data["account_id"], data["email"], data["first_name"]) == (account["id"], "ada@example.com", "Ada")
    assert data["verification_url"].startswith("http://127.0.0.1:8001/verify-email?token=")
    assert datetime.fromisoformat(data["expires_at"]) == clock.now + timedelta(hours=24)


def test_each_sign_up_writes_exactly_its_two_events(client, outbox):
    first = sign_up(client, email="one@example.com").json
    second = sign_up(client, email="two@example.com").json
    assert sign_up(client, email="ONE@example.com").status_code == 409

    by_account = sorted((e["data"]["account_id"], e["type"]) for e in outbox.events())
    assert by_account == sorted([
        (first["id"], "identity.account.registered"), (first["id"], "identity.email_verification.requested"),
        (second["id"], "identity.account.registered"), (second["id"], "identity.email_verification.requested"),
    ])


@pytest.mark.parametrize("changes, field", [
    ({"first_name": "   "}, "first_name"),  # blank (it used to be accepted here and refused by tenancy)
    ({"last_name": "\u00a0"}, "last_name"),
    ({"first_name": "Claim your prize at evil.com"}, "first_name"),
    ({"last_name": "https://evil.example/login"}, "last_name"),
    ({"first_name": "www.evil"}, "first_name"),
])
def test_blank_names_and_names_that_read_as_links_are_refused(client, outbox, changes, field):
    # Names reach other people's mail (the invitation names its inviter): shared/names.py decides.
    body = assert_problem(sign_up(client, **changes), 422, "validation_failed")

    assert list(body["errors"]) == [field]
    assert outbox.events() == []
