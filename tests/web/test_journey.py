"""A person goes from the sign-up page to their first workspace in a real browser: sign up, the mail,
verify, sign in, first organization, workspace home. Once with the keyboard where it matters, and once
with JavaScript off."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.web.conftest import PASSWORD, check_page, unique_address


def sign_up(page, stack, address: str) -> None:
    page.goto(stack.web + "/sign-up")
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    expect(page.get_by_text(address)).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Resend"))).to_be_visible()


def verify_from_mail(page, stack, address: str) -> None:
    link = stack.link_in_mail(address, "/verify-email")
    page.goto(link)
    page.get_by_role("button", name="Verify my email").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your email is verified")
    page.get_by_role("link", name="Sign in").click()


def sign_in_with_keyboard(page, address: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.get_by_label("Email").focus()
    page.keyboard.type(address)
    page.keyboard.press("Tab")  # Password comes straight after Email
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")


def create_first_organization(page) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text("Create your organization")
    page.get_by_label("Organization name").fill("Analytical Engines")
    page.get_by_role("button", name="Create organization").click()
    expect(page).to_have_url(re.compile(r"/w/[0-9a-f-]{36}$"))


def sign_in(page, address: str, password: str = PASSWORD) -> None:
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def signed_up_and_in(page, stack) -> str:
    """A new account, verified through its mail, signed in, with its first organization; its address."""
    address = unique_address()
    page.goto(stack.web + "/sign-up")
    sign_up(page, stack, address)
    verify_from_mail(page, stack, address)
    sign_in(page, address)
    create_first_organization(page)
    return address


def test_sign_up_to_workspace_home(stack, new_page):
    page = new_page()
    address = unique_address()
    page.goto(stack.web + "/sign-up")
    check_page(page, "sign-up")
    sign_up(page, stack, address)
    check_page(page, "check-email")
    page.goto(stack.link_in_mail(address, "/verify-email"))
    check_page(page, "verify-email")
    verify_from_mail(page, stack, address)
    check_page(page, "sign-in")
    sign_in_with_keyboard(page, address)
    check_page(page, "first-organization")
    create_first_organization(page)

    menu_button = page.get_by_role("button", name="Profile menu")
    expect(menu_button).to_have_attribute("aria-expanded", "false")
    menu_button.focus()
    page.keyboard.press("Enter")
    expect(menu_button).to_have_attribute("aria-expanded", "true")
    current = page.get_by_role("link", name=re.compile("My Workspace"))
    expect(current).to_have_attribute("aria-current", "page")
    for name in ("Create workspace", "Organization settings", "Security"):
        expect(page.get_by_role("link", name=name)).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    check_page(page, "workspace-home")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.goto(stack.web + "/")
    expect(page).to_have_url(re.compile(r"/sign-in$"))


def test_the_whole_journey_works_with_javascript_off(stack, new_page):
    page = new_page(javascript=False)
    signed_up_and_in(page, stack)
    # Without JS the profile menu is a plain list of links, all reachable
    expect(page.get_by_role("link", name="Organization settings")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_a_wrong_password_gets_the_generic_answer_and_the_summary_has_focus(stack, new_page):
    page = new_page()
    page.goto(stack.web + "/sign-in")
    page.get_by_label("Email").fill(unique_address())
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("The email or password is incorrect.")
    expect(summary).to_be_focused()
    expect(page.get_by_label("Email")).not_to_have_value("")
    expect(page.get_by_label("Password")).to_have_value("")
    check_page(page, "sign-in-error")


def test_unknown_paths_get_an_html_404_with_a_home_link(stack, new_page):
    page = new_page()
    response = page.goto(stack.web + "/no/such/page")
    assert response.status == 404
    expect(page.get_by_role("link", name="Home")).to_have_attribute("href", "/")
    check_page(page, "not-found")


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_the_journey_on_postgresql_and_rabbitmq(postgres_stack, new_page):
    page = new_page()
    signed_up_and_in(page, postgres_stack)
    page.get_by_role("button", name="Profile menu").click()
    page.get_by_role("link", name="Security").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Security")


def test_a_used_or_bogus_verification_link_offers_a_new_one(stack, new_page):
    page = new_page()
    page.goto(stack.web + "/verify-email?token=not-a-real-token")
    page.get_by_role("button", name="Verify my email").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid any more")
    check_page(page, "verify-email-expired")
    address = unique_address()
    page.get_by_label("Email").fill(address)
    page.get_by_role("button", name="Resend").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    expect(page.get_by_text(address)).to_be_visible()
