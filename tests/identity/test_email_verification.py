"""Email verification: confirming a token, resending the mail, and the page the mail's button opens."""
from __future__ import annotations

import re
from html.parser import HTMLParser

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


# The page the mail's button opens: opening it changes nothing, its button's POST verifies


class Forms(HTMLParser):
    """The forms of an HTML page: each a dict of method, action, inputs {name: value} and button labels."""

    def __init__(self, page: str):
        super().__init__()
        self.forms: list[dict] = []
        self._button: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"method": attrs.get("method", "get").lower(), "action": attrs.get("action"),
                               "inputs": {}, "buttons": []})
        elif tag == "input" and self.forms:
            self.forms[-1]["inputs"][attrs.get("name")] = attrs.get("value")
        elif tag == "button" and self.forms:
            self._button = []

    def handle_data(self, data):
        if self._button is not None:
            self._button.append(data)

    def handle_endtag(self, tag):
        if tag == "button" and self._button is not None:
            self.forms[-1]["buttons"].append("".join(self._button).strip())
            self._button = None


def open_link(client, token: str):
    """What a mail scanner or link preview does: GET the link, follow nothing."""
    return client.get(f"/verify-email?token={token}", follow_redirects=False)


def press_the_button(client, token: str):
    return client.post("/verify-email", data={"token": token})


def assert_page(response, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def test_opening_the_link_verifies_nothing_however_often(client, auth, outbox, unverified):
    token = auth.verification_token(unverified)

    for _ in range(3):
        assert_page(open_link(client, token), 200)

    assert_problem(auth.sign_in(unverified), 403, "email_not_verified")
    assert outbox.events("identity.account.verified") == []
    assert confirm(client, token).json["email_verified"] is True  # and the token was not spent either


def test_the_page_shows_a_verify_my_email_button_that_posts_the_token(client, auth, unverified):
    token = auth.verification_token(unverified)

    page = assert_page(open_link(client, token), 200)

    assert unverified in page
    [form] = Forms(page).forms
    assert form["method"] == "post" and form["action"] == "/verify-email"
    assert form["inputs"] == {"token": token}
    assert form["buttons"] == ["Verify my email"]


def test_pressing_the_button_verifies_and_says_so(client, auth, unverified):
    token = auth.verification_token(unverified)
    form = Forms(assert_page(open_link(client, token), 200)).forms[0]

    page = assert_page(client.post(form["action"], data=form["inputs"]), 200)

    assert "Your email is verified" in page and unverified in page
    assert auth.sign_in(unverified).status_code == 200


def test_pressing_the_button_twice_is_fine(client, auth, outbox, unverified):
    token = auth.verification_token(unverified)
    press_the_button(client, token)

    assert "Your email is verified" in assert_page(press_the_button(client, token), 200)
    assert len(outbox.events("identity.account.verified")) == 1


def test_opening_the_link_once_verified_says_so_without_a_button(client, auth, unverified):
    token = auth.verification_token(unverified)
    press_the_button(client, token)

    page = assert_page(open_link(client, token), 200)

    assert "Your email is verified" in page
    assert all(form["action"] != "/verify-email" for form in Forms(page).forms)


def test_a_scanner_opening_the_link_does_not_let_someone_else_in_with_the_victims_address(client, auth, outbox):
    """The attack: someone signs up with a victim's address; the victim's mail scanner opens the link. The
    sign-up stays unverified, so the attacker can neither sign in nor, signed in, turn on 2FA or read the
    invitations addressed to the victim."""
    attacker_password = "the attacker's own password"
    auth.sign_up("victim@example.com", password=attacker_password)
    token = auth.verification_token("victim@example.com")
    assert_problem(auth.sign_in("victim@example.com", attacker_password), 403, "email_not_verified")

    for _ in range(3):
        open_link(client, token)

    assert_problem(auth.sign_in("victim@example.com", attacker_password), 403, "email_not_verified")
    assert outbox.events("identity.account.verified") == []


def dead_link_page(response, status: int = 400) -> str:
    """A dead link's page: says so and offers a new link (a form that posts an address)."""
    page = assert_page(response, status)
    assert "does not work" in page
    [form] = Forms(page).forms
    assert form["method"] == "post" and form["action"] == "/verify-email/resend"
    assert list(form["inputs"]) == ["email"] and form["buttons"] == ["Send a new link"]
    return page


@pytest.mark.parametrize("query", ["?token=not-a-token", "?token=", ""])
def test_the_page_says_a_bad_link_does_not_work(client, query):
    dead_link_page(client.get(f"/verify-email{query}"))


def test_the_page_says_an_expired_link_does_not_work(client, auth, clock, unverified):
    clock.advance(DAY + 1)

    assert "expired" in dead_link_page(open_link(client, auth.verification_token(unverified)))


@pytest.mark.parametrize("data", [{"token": "not-a-token"}, {"token": ""}, {}])
def test_pressing_the_button_of_a_bad_link_says_it_does_not_work(client, auth, unverified, data):
    dead_link_page(client.post("/verify-email", data=data))

    assert_problem(auth.sign_in(unverified), 403, "email_not_verified")


def test_pressing_the_button_after_the_link_expired_says_so(client, auth, clock, unverified):
    token = auth.verification_token(unverified)
    form = Forms(assert_page(open_link(client, token), 200)).forms[0]
    clock.advance(DAY + 1)

    assert "expired" in dead_link_page(client.post(form["action"], data=form["inputs"]))
    assert_problem(auth.sign_in(unverified), 403, "email_not_verified")


def test_pressing_the_button_of_a_link_a_newer_mail_replaced_says_it_does_not_work(client, auth, clock, unverified):
    earlier = auth.verification_token(unverified)
    clock.advance(COOLDOWN + 1)
    resend(client, unverified)

    dead_link_page(press_the_button(client, earlier))
    assert_problem(auth.sign_in(unverified), 403, "email_not_verified")


def test_a_password_reset_link_does_not_work_on_the_page(client, outbox, unverified):
    token = reset_token(client, outbox, unverified)

    dead_link_page(open_link(client, token))
    dead_link_page(press_the_button(client, token))


def test_a_dead_links_page_sends_a_new_link(client, outbox, clock, unverified):
    clock.advance(COOLDOWN + 1)

    page = assert_page(client.post("/verify-email/resend", data={"email": unverified}), 202)

    assert "Check your inbox" in page
    assert verification_mails(outbox, unverified) == 2


def test_a_dead_links_page_answers_the_same_for_any_address(client, auth, outbox, clock, unverified):
    auth.verified_account("grace@example.com")
    clock.advance(COOLDOWN + 1)
    before = len(outbox.events(VERIFICATION_REQUESTED))

    answers = [client.post("/verify-email/resend", data={"email": email})
               for email in (unverified, "grace@example.com", "nobody@example.com")]

    assert [r.status_code for r in answers] == [202, 202, 202]
    assert len({r.get_data() for r in answers}) == 1
    assert [e["data"]["email"] for e in outbox.events(VERIFICATION_REQUESTED)[before:]] == [unverified]


@pytest.mark.parametrize("data", [{"email": "not an address"}, {"email": "ada@example.com\r\nBcc: x@example.com"},
                                  {}])
def test_a_dead_links_page_refuses_what_is_not_an_address(client, outbox, data):
    before = len(outbox.events(VERIFICATION_REQUESTED))

    dead_link_page(client.post("/verify-email/resend", data=data), 422)

    assert len(outbox.events(VERIFICATION_REQUESTED)) == before


def test_a_dead_links_page_is_limited_per_client_address(make_identity_app):
    client = make_identity_app(IP_RATE_LIMIT_PER_MINUTE=2).test_client()

    answers = [client.post("/verify-email/resend", data={"email": "nobody@example.com"}) for _ in range(3)]

    assert [r.status_code for r in answers] == [202, 202, 429]
    assert int(answers[-1].headers["Retry-After"]) > 0
    dead_link_page(answers[-1], 429)


def page_loads(client, response) -> None:
    """The page is allowed nothing but its own stylesheet and forms that post to its own origin, and
    needs nothing more: no script, no inline style, and the stylesheet it links is served."""
    policy = response.headers["Content-Security-Policy"]
    assert {d.strip() for d in policy.split(";")} == {
        "default-src 'none'", "style-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"}
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    page = response.get_data(as_text=True)
    assert "<script" not in page and "<style" not in page and "style=" not in page
    [stylesheet] = re.findall(r'<link rel="stylesheet" href="([^"]+)">', page)
    assert stylesheet.startswith("/")  # same origin
    css = client.get(stylesheet)
    assert css.status_code == 200 and css.mimetype == "text/css"


def test_every_state_of_the_page_keeps_its_token_to_itself_and_loads_only_itself(client, auth, unverified):
    token = auth.verification_token(unverified)

    for response in (open_link(client, token), client.get("/verify-email?token=x"),
                     client.post("/verify-email/resend", data={"email": unverified}),
                     press_the_button(client, token), press_the_button(client, "x")):
        page_loads(client, response)
