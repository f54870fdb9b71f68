"""Email verification: confirming a token, resending the mail, and the page the mail's button opens."""
from __future__ import annotations

import pytest

from tests.conftest import AuthActions, assert_problem, token_from_url

DAY = 24 * 3600
COOLDOWN = 60  # EMAIL_RESEND_COOLDOWN in the test environment
VERIFICATION_REQUESTED = "identity.email_verification.requested"


def confirm(client, token: str):
    return client.post("/v1/email-verifications/confirm", json={"token": token})


def resend(client, email: str):
    return client.post("/v1/email-verifications", json={"email": email})


def verification_mails(outbox, email: str) -> int:
    return sum(1 for e in outbox.events(VERIFICATION_REQUESTED) if e["data"]["email"] == email)


def reset_token(client, outbox, email: str) -> str:
    assert client.post("/v1/password-resets", json={"email": email}).status_code == 202
    return token_from_url(outbox.last("identity.password_reset.requested", email)["data"]["reset_url"])


@pytest.fixture
def unverified(auth) -> str:
    """The address of a fresh, unverified account."""
    return auth.sign_up("ada@example.com")["email"]


# Confirm


def test_confirm_returns_the_verified_account(client, auth, unverified):
    response = confirm(client, auth.verification_token(unverified))

    assert response.status_code == 200
    assert response.json["email"] == unverified
    assert response.json["email_verified"] is True
    assert auth.sign_in(unverified).status_code == 200


def test_confirming_again_with_the_same_token_is_200(client, auth, unverified):
    token = auth.verification_token(unverified)
    first = confirm(client, token)

    second = confirm(client, token)

    assert second.status_code == 200
    assert second.json == first.json


def test_the_verified_event_is_recorded_once(client, auth, outbox, unverified):
    token = auth.verification_token(unverified)
    confirm(client, token)
    confirm(client, token)
    client.get(f"/verify-email?token={token}")

    events = outbox.events("identity.account.verified")
    assert [e["data"] for e in events] == [{"account_id": events[0]["data"]["account_id"], "email": unverified}]


@pytest.mark.parametrize("token", ["not-a-token", "x" * 43, "x" * 512])
def test_an_unknown_token_is_invalid(client, token):
    assert_problem(confirm(client, token), 400, "token_invalid")


@pytest.mark.parametrize("token", ["", "x" * 513])
def test_a_token_of_impossible_length_is_a_validation_error(client, token):
    assert_problem(confirm(client, token), 422, "validation_failed")


def test_a_token_works_until_24_hours_have_passed(client, auth, clock, unverified):
    clock.advance(DAY - 1)

    assert confirm(client, auth.verification_token(unverified)).status_code == 200


def test_a_token_expires_after_24_hours(client, auth, clock, unverified):
    clock.advance(DAY + 1)

    assert_problem(confirm(client, auth.verification_token(unverified)), 400, "token_expired")
    assert auth.sign_in(unverified).status_code == 403


def test_a_password_reset_token_cannot_verify_an_email(client, outbox, unverified):
    token = reset_token(client, outbox, unverified)

    assert_problem(confirm(client, token), 400, "token_invalid")


# Resend


def test_resend_is_202_with_the_same_body_for_any_address(client, auth, unverified):
    auth.verified_account("grace@example.com")

    answers = [resend(client, email) for email in (unverified, "grace@example.com", "nobody@example.com")]

    assert [r.status_code for r in answers] == [202, 202, 202]
    assert len({r.get_data() for r in answers}) == 1


def test_resend_mails_only_unverified_accounts(client, auth, outbox, unverified):
    auth.verified_account("grace@example.com")
    before = len(outbox.events(VERIFICATION_REQUESTED))

    for email in (unverified, "grace@example.com", "nobody@example.com"):
        resend(client, email)

    mails = outbox.events(VERIFICATION_REQUESTED)[before:]
    assert [e["data"]["email"] for e in mails] == [unverified]


def test_resend_normalises_the_address(client, outbox, unverified):
    resend(client, "  ADA@Example.com ")

    assert verification_mails(outbox, unverified) == 2


def test_a_second_resend_within_the_cooldown_sends_nothing(client, outbox, clock, unverified):
    resend(client, unverified)
    clock.advance(COOLDOWN - 1)
    resend(client, unverified)
    assert verification_mails(outbox, unverified) == 2  # sign-up and the first resend

    clock.advance(2)
    resend(client, unverified)
    assert verification_mails(outbox, unverified) == 3


def test_resends_stop_at_the_hourly_cap(make_identity_app, outbox, clock):
    client = make_identity_app(EMAIL_RESEND_HOURLY_CAP=2).test_client()
    email = AuthActions(client, outbox).sign_up("ada@example.com")["email"]

    for _ in range(4):
        assert resend(client, email).status_code == 202
        clock.advance(COOLDOWN + 1)
    assert verification_mails(outbox, email) == 1 + 2

    clock.advance(3600)
    resend(client, email)
    assert verification_mails(outbox, email) == 1 + 3


def test_a_resend_voids_the_earlier_token(client, auth, unverified):
    earlier = auth.verification_token(unverified)
    resend(client, unverified)
    later = auth.verification_token(unverified)
    assert later != earlier

    response = confirm(client, earlier)

    assert response.status_code == 400
    assert response.json["code"] in ("token_expired", "token_invalid")
    assert confirm(client, later).status_code == 200


def test_resend_refuses_a_malformed_address(client):
    assert_problem(resend(client, "ada@example.com\r\nBcc: x@example.com"), 422, "validation_failed")


# The page the mail's button opens


def test_the_page_verifies_and_says_so(client, auth, unverified):
    response = client.get(f"/verify-email?token={auth.verification_token(unverified)}")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "verified" in response.get_data(as_text=True)
    assert auth.sign_in(unverified).status_code == 200


def test_the_page_is_200_when_a_mail_scanner_opened_it_first(client, auth, unverified):
    url = f"/verify-email?token={auth.verification_token(unverified)}"
    client.get(url)

    assert client.get(url).status_code == 200


@pytest.mark.parametrize("query", ["?token=not-a-token", "?token=", ""])
def test_the_page_says_a_bad_link_does_not_work(client, query):
    response = client.get(f"/verify-email{query}")

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "does not work" in response.get_data(as_text=True)


def test_the_page_says_an_expired_link_does_not_work(client, auth, clock, unverified):
    clock.advance(DAY + 1)

    response = client.get(f"/verify-email?token={auth.verification_token(unverified)}")

    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
