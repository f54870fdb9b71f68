"""Organization settings and invitations in the browser: an owner invites, the invitee comes in through
sign-up (and back to the invitation after verifying), accepts, and lands in the workspace; a member gets
a 403 page on the settings, an outsider a 404."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.web.conftest import check_page, unique_address
from tests.web.test_journey import sign_in, sign_up, signed_up_and_in


def test_invite_sign_up_through_the_link_accept_and_roles(stack, new_page):
    owner = new_page()
    signed_up_and_in(owner, stack)
    workspace_url = owner.url
    owner.get_by_role("button", name="Profile menu").click()
    owner.get_by_role("link", name="Organization settings").click()
    expect(owner.get_by_role("heading", level=1)).to_have_text("Organization settings")
    settings_url = owner.url
    owner.get_by_label("Organization name").fill("Difference Engines")
    owner.get_by_role("button", name="Rename").click()
    expect(owner.get_by_role("status")).to_contain_text("Difference Engines")

    invitee = unique_address()
    owner.get_by_label("Email").fill(invitee)
    expect(owner.get_by_label("Role")).to_have_value("member")
    owner.get_by_role("button", name="Send invitation").click()
    row = owner.get_by_role("row", name=re.compile(re.escape(invitee)))
    expect(row).to_be_visible()
    expect(row.get_by_role("button", name=re.compile("Resend"))).to_be_visible()
    expect(row.get_by_role("button", name=re.compile("Revoke"))).to_be_visible()
    check_page(owner, "organization-settings")

    guest = new_page()
    link = stack.link_in_mail(invitee, "/invitations/accept")
    guest.goto(link)
    check_page(guest, "accept-invitation-signed-out")
    expect(guest.get_by_role("heading", level=1)).to_have_text("Join My Workspace")
    expect(guest.get_by_text(f"Ada Lovelace invited {invitee} to the workspace My Workspace of Difference Engines, "
                             "as member.")).to_be_visible()
    assert guest.goto(link[:-1]).status == 404  # not the invitation's token: nothing shown
    expect(guest.get_by_role("heading", level=1)).to_have_text("Invitation not found")
    expect(guest.get_by_text("Difference Engines")).to_have_count(0)
    guest.goto(link)
    expect(guest.get_by_role("link", name="Sign in")).to_be_visible()
    guest.get_by_role("link", name="Sign up").click()
    sign_up(guest, stack, invitee)
    guest.goto(stack.link_in_mail(invitee, "/verify-email"))
    guest.get_by_role("button", name="Verify my email").click()
    guest.get_by_role("link", name="Sign in").click()
    sign_in(guest, invitee)

    expect(guest.get_by_role("heading", level=1)).to_have_text("Join My Workspace")
    expect(guest.get_by_text("Difference Engines")).to_be_visible()
    check_page(guest, "accept-invitation")
    guest.get_by_role("button", name="Accept invitation").click()
    expect(guest).to_have_url(workspace_url)
    assert guest.goto(link).status == 409  # the link again, once accepted
    expect(guest.get_by_role("heading", level=1)).to_have_text("This invitation was already accepted")

    response = guest.goto(settings_url)
    assert response.status == 403
    check_page(guest, "forbidden")

    outsider = new_page()
    signed_up_and_in(outsider, stack)
    assert outsider.goto(settings_url).status == 404

    owner.reload()
    expect(owner.get_by_role("cell", name=invitee, exact=True)).to_be_visible()  # now in the members table
    expect(owner.get_by_text("No invitations are waiting.")).to_be_visible()
    check_page(owner, "organization-settings-members")

    owner.get_by_label(f"Access level of {invitee}", exact=True).select_option("admin")
    owner.get_by_role("button", name=f"Save the access level of {invitee}").click()
    expect(owner.get_by_role("status")).to_contain_text("is now admin")

    owner.get_by_role("link", name=f"Remove {invitee}").click()
    check_page(owner, "remove-member")
    owner.get_by_role("button", name="Remove").click()
    expect(owner.get_by_role("status")).to_contain_text("is no longer in")
    expect(owner.get_by_role("cell", name=invitee, exact=True)).to_have_count(0)


def test_create_a_second_workspace_from_the_profile_menu(stack, new_page):
    page = new_page()
    signed_up_and_in(page, stack)
    page.get_by_role("button", name="Profile menu").click()
    page.get_by_role("link", name="Create workspace").click()
    check_page(page, "create-workspace")
    page.get_by_label("Workspace name").fill("Research")
    page.get_by_role("button", name="Create workspace").click()
    expect(page).to_have_url(re.compile(r"/w/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Research")
    page.get_by_role("button", name="Profile menu").click()
    expect(page.get_by_role("link", name=re.compile("Research"))).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("link", name=re.compile("My Workspace"))).not_to_have_attribute("aria-current", "page")
