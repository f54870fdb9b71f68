"""Two-factor sign-in, forgot/reset password and the second-factor pages, in the browser."""
from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path

import pyotp
from playwright.sync_api import expect

from tests.web.conftest import PASSWORD, check_page, unique_address
from tests.web.test_journey import sign_in, signed_up_and_in


def code_for(secret: str, steps_ahead: int = 0) -> str:
    """The code of this time step or a later one: identity takes each step once and allows one step of
    drift, so the next step's code is fresh without waiting for the clock."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def test_turn_on_two_factor_then_sign_in_with_a_code_and_with_a_recovery_code(stack, new_page):
    page = new_page()
    address = signed_up_and_in(page, stack)
    page.goto(stack.web + "/security")
    check_page(page, "security")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Turn on two-factor authentication").click()

    expect(page.locator(".qr svg")).to_be_visible()
    check_page(page, "security-totp")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Authentication code").fill(code_for(secret))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    check_page(page, "recovery-codes")
    with page.expect_response(re.compile(r"/security/recovery-codes/download$")) as answer, \
            page.expect_download() as download:
        page.get_by_role("button", name="Download").click()
    assert answer.value.headers["content-type"].startswith("text/plain")
    assert answer.value.headers["content-disposition"] == 'attachment; filename="threshold-recovery-codes.txt"'
    assert download.value.suggested_filename == "threshold-recovery-codes.txt"
    saved = Path(download.value.path()).read_text()
    assert [line for line in saved.splitlines() if line in codes] == codes and address in saved
    page.reload()  # shown once
    expect(page.get_by_role("heading", level=1)).to_have_text("Security")
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    again = page.request.post(stack.web + "/security/recovery-codes/download", form={"csrf_token": token},
                              max_redirects=0)
    assert (again.status, again.headers["location"]) == (302, "/security")  # gone once the page is left

    page.get_by_role("button", name="Profile menu").click()
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, address)
    code = page.get_by_label("Authentication code")
    expect(code).to_have_attribute("autocomplete", "one-time-code")
    expect(code).to_have_attribute("inputmode", "numeric")
    check_page(page, "second-factor")
    code.fill("000000" if "000000" not in (code_for(secret), code_for(secret, 1)) else "111111")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_be_focused()
    page.get_by_label("Authentication code").fill(code_for(secret, steps_ahead=1))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/w/[0-9a-f-]{36}$"))

    page.get_by_role("button", name="Profile menu").click()
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, address)
    page.get_by_role("link", name="Use a recovery code").click()
    check_page(page, "recovery-code")
    page.get_by_label("Recovery code").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/w/[0-9a-f-]{36}$"))

    page.goto(stack.web + "/security")  # turning it off asks for the password
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Turn off two-factor authentication").click()
    expect(page.get_by_role("alert")).to_contain_text("The password is incorrect.")
    check_page(page, "security-turn-off")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Turn off two-factor authentication").click()
    expect(page.get_by_role("status")).to_contain_text("Two-factor authentication is off.")
    expect(page.get_by_role("button", name="Turn on two-factor authentication")).to_be_visible()


def test_forgot_and_reset_password(stack, new_page):
    page = new_page()
    address = signed_up_and_in(page, stack)
    page.get_by_role("button", name="Profile menu").click()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("link", name="Forgot password").click()
    check_page(page, "forgot-password")
    page.get_by_label("Email").fill(address)
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_role("status")).to_contain_text(address)

    page.goto(stack.link_in_mail(address, "/reset-password"))
    check_page(page, "reset-password")
    page.get_by_label("New password").fill("a brand new passphrase")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    sign_in(page, address, "a brand new passphrase")
    expect(page).to_have_url(re.compile(r"/w/[0-9a-f-]{36}$"))


def test_sign_up_with_a_provider_lands_on_the_first_organization(tmp_path, live_server, new_page):
    from support.smtp import SmtpSink
    from tests.oidc_provider import OidcProvider
    from tests.web.conftest import Stack

    with SmtpSink() as sink:
        stack = Stack(tmp_path, sink)
        idp = OidcProvider.serve(live_server, redirect_uris=[f"{stack.identity}/v1/oidc/google/callback"])
        idp.user = replace(idp.user, email=unique_address(), email_verified=True)
        stack.processes.env["OIDC_PROVIDERS"] = json.dumps({"google": {
            "issuer": idp.issuer, "client_id": idp.client_id, "client_secret": idp.client_secret}})
        try:
            stack.start()
            page = new_page()
            page.goto(stack.web + "/sign-up")
            page.get_by_role("button", name="Sign up with Google").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Create your organization")
            page.get_by_label("Organization name").fill("Federated")
            page.get_by_role("button", name="Create organization").click()
            expect(page).to_have_url(re.compile(r"/w/[0-9a-f-]{36}$"))
        finally:
            stack.stop()


def test_the_security_page_lists_the_sessions_and_signs_another_one_out(stack, new_page):
    laptop = new_page()
    address = signed_up_and_in(laptop, stack)
    phone = new_page()
    phone.goto(stack.web + "/sign-in")
    sign_in(phone, address)
    expect(phone).to_have_url(re.compile(r"/w/[0-9a-f-]{36}$"))

    laptop.goto(stack.web + "/security")
    sessions = laptop.get_by_role("list", name="Where you are signed in")
    expect(sessions.get_by_role("listitem")).to_have_count(2)  # this browser, the phone
    expect(sessions.get_by_role("listitem").filter(has_text="This browser")).to_have_count(1)
    expect(sessions.get_by_role("listitem").filter(has_text=re.compile(r"Chrome on Linux.*from 127\.0\.0\.1", re.S))
           ).to_have_count(2)
    expect(sessions.get_by_role("button", name="Sign out")).to_have_count(1)  # not this browser's own
    check_page(laptop, "security-sessions")
    sessions.get_by_role("button", name="Sign out").click()

    expect(laptop.get_by_role("status")).to_contain_text("That session is signed out.")
    expect(sessions.get_by_role("listitem")).to_have_count(1)
    expect(sessions.get_by_role("button", name="Sign out")).to_have_count(0)
