"""Invitations through the tenancy API: invite by email with a role (an event the notifier mails), the
invitee's pending list, accept with the token from the mail (only the invited, verified address), revoke
and decline, expiry, and at most one pending invitation per address and workspace."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import create_engine, text

from tests.conftest import assert_problem
from tests.tenancy.test_organizations import contains
from tests.tenancy_fixtures import Tenants, invitation_link, race_past_locks

WEEK = 7 * 86400


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def stored_invitation(database_url: str, invitation_id: str) -> dict:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(text("SELECT status, token_hash FROM invitations WHERE id = :id"),
                                     {"id": invitation_id}).mappings().one())
    finally:
        engine.dispose()


def member_ids(tenancy, workspace_id: str, viewer: dict) -> set[str]:
    response = tenancy.get(f"/v1/workspaces/{workspace_id}/members", headers=viewer["headers"])
    assert response.status_code == 200, response.get_data(as_text=True)
    return {m["user_id"] for m in response.json["items"]}


# --- invite -------------------------------------------------------------------------------------------

def test_invite_returns_the_invitation_and_records_the_mail_event(tenancy, people, tenants, tenancy_outbox, clock,
                                                                  tenancy_db):
    ada = people.new("ada@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]

    response = tenancy.post(f"/v1/workspaces/{ws_id}/invitations", json={"email": "Grace@Example.COM", "role": "admin"},
                            headers=ada["headers"])

    assert response.status_code == 201, response.json
    invitation = response.json
    assert contains(invitation, {"workspace_id": ws_id, "workspace_name": "My Workspace",
                                 "email": "grace@example.com", "role": "admin", "status": "pending"})
    assert parse_time(invitation["created_at"]) == clock.now
    assert parse_time(invitation["expires_at"]) == clock.now + timedelta(seconds=WEEK)
    [event] = tenancy_outbox.events("tenancy.invitation.created")
    data = event["data"]
    assert contains(data, {"invitation_id": invitation["id"], "workspace_id": ws_id, "workspace_name": "My Workspace",
                           "email": "grace@example.com", "inviter_name": "Ada Lovelace"})
    assert parse_time(data["expires_at"]) == clock.now + timedelta(seconds=WEEK)
    link = urlsplit(data["accept_url"])
    # the default: a page that answers
    assert f"{link.scheme}://{link.netloc}{link.path}" == "http://127.0.0.1:8002/docs"
    token = parse_qs(link.query)["token"][0]
    assert parse_qs(link.query)["invitation"] == [invitation["id"]]
    assert len(token) >= 43 and token not in response.get_data(as_text=True)
    stored = stored_invitation(tenancy_db, invitation["id"])
    assert stored["token_hash"] == hashlib.sha256(token.encode()).hexdigest() and stored["status"] == "pending"


def test_accept_link_base_and_lifetime_are_configuration(make_tenancy_app, people, tenancy_outbox, clock):
    client = make_tenancy_app(INVITATION_ACCEPT_URL="https://app.example.com/join", INVITATION_TTL=3600).test_client()
    ada = people.new("ada@example.com")
    ws_id = client.post("/v1/organizations", json={"name": "Engines"}, headers=ada["headers"]).json["workspace"]["id"]

    invitation = client.post(f"/v1/workspaces/{ws_id}/invitations", json={"email": "grace@example.com"},
                             headers=ada["headers"]).json

    assert invitation["role"] == "member"  # the default
    assert parse_time(invitation["expires_at"]) == clock.now + timedelta(hours=1)
    [event] = tenancy_outbox.events("tenancy.invitation.created")
    assert event["data"]["accept_url"].startswith(f"https://app.example.com/join?invitation={invitation['id']}&token=")


def invite_to(client, ws_id: str, inviter: dict, email: str):
    return client.post(f"/v1/workspaces/{ws_id}/invitations", json={"email": email, "role": "member"},
                       headers=inviter["headers"])


def assert_rate_limited(response, longest: int) -> None:
    assert_problem(response, 429, "rate_limited")
    assert 0 < int(response.headers["Retry-After"]) <= longest


def test_an_inviter_sends_at_most_the_hourly_limit(make_tenancy_app, people, clock, tenancy_outbox):
    client = make_tenancy_app(INVITATIONS_PER_INVITER_PER_HOUR=3).test_client()
    ada = people.new("ada@example.com")
    first = client.post("/v1/organizations", json={"name": "One"}, headers=ada["headers"]).json["workspace"]["id"]
    second = client.post("/v1/organizations", json={"name": "Two"}, headers=ada["headers"]).json["workspace"]["id"]

    for n in range(3):
        assert invite_to(client, (first, second)[n % 2], ada, f"x{n}@example.com").status_code == 201
    assert_rate_limited(invite_to(client, second, ada, "x3@example.com"), 3600)  # in any of her workspaces
    assert len(tenancy_outbox.events("tenancy.invitation.created")) == 3

    clock.advance(3600)
    assert invite_to(client, first, ada, "x4@example.com").status_code == 201


def test_a_workspace_receives_at_most_the_daily_limit(make_tenancy_app, people, tenancy_outbox, clock):
    client = make_tenancy_app(INVITATIONS_PER_WORKSPACE_PER_DAY=3).test_client()
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    ws_id = client.post("/v1/organizations", json={"name": "One"}, headers=ada["headers"]).json["workspace"]["id"]
    other = client.post("/v1/organizations", json={"name": "Two"}, headers=ada["headers"]).json["workspace"]["id"]
    Tenants(client, tenancy_outbox).join(ada, ws_id, grace, role="admin")  # the first of the three

    assert invite_to(client, ws_id, grace, "x1@example.com").status_code == 201
    assert invite_to(client, ws_id, ada, "x2@example.com").status_code == 201
    assert_rate_limited(invite_to(client, ws_id, grace, "x3@example.com"), 86400)  # whoever sends it
    assert invite_to(client, other, ada, "x4@example.com").status_code == 201  # another workspace has its own

    clock.advance(86400)
    assert invite_to(client, ws_id, ada, "x5@example.com").status_code == 201


def test_outsiders_cannot_spend_a_workspace_s_invitations(make_tenancy_app, people):
    client = make_tenancy_app(INVITATIONS_PER_WORKSPACE_PER_DAY=2).test_client()
    ada, mallory = people.new("ada@example.com"), people.new("mallory@example.com")
    ws_id = client.post("/v1/organizations", json={"name": "One"}, headers=ada["headers"]).json["workspace"]["id"]

    for n in range(5):
        assert_problem(invite_to(client, ws_id, mallory, f"m{n}@example.com"), 404, "not_found")

    assert invite_to(client, ws_id, ada, "x1@example.com").status_code == 201
    assert invite_to(client, ws_id, ada, "x2@example.com").status_code == 201


def test_the_invitation_limits_default_to_20_an_hour_per_inviter_and_50_a_day_per_workspace(tmp_path):
    from services.tenancy.settings import Settings
    from tests.tenancy_fixtures import tenancy_env

    settings = Settings.from_env(tenancy_env("sqlite:///unused.db", "http://127.0.0.1:1", tmp_path))

    assert (settings.invitations_per_inviter_per_hour, settings.invitations_per_workspace_per_day) == (20, 50)


def test_who_may_invite_with_which_role(tenancy, people, tenants):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    mallory = people.new("mallory@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    tenants.join(ada, ws_id, grace, role="admin")
    tenants.join(ada, ws_id, alan)

    def invite(inviter, email, role):
        return tenancy.post(f"/v1/workspaces/{ws_id}/invitations", json={"email": email, "role": role},
                            headers=inviter["headers"])

    assert_problem(invite(alan, "x1@example.com", "member"), 403, "forbidden")
    assert_problem(invite(grace, "x2@example.com", "owner"), 403, "forbidden")  # above her own role
    assert_problem(invite(mallory, "x3@example.com", "member"), 404, "not_found")
    assert invite(grace, "x4@example.com", "admin").status_code == 201
    assert invite(grace, "x5@example.com", "member").status_code == 201
    assert invite(ada, "x6@example.com", "owner").status_code == 201
    assert_problem(invite(ada, "x7@example.com", "superuser"), 422, "validation_failed")
    for bad in ("not-an-email", "x8@example.com\r\nBcc: all@example.com", "", "a" * 250 + "@example.com"):
        assert_problem(invite(ada, bad, "member"), 422, "validation_failed")

    pending = tenancy.get(f"/v1/workspaces/{ws_id}/invitations", headers=grace["headers"])
    assert sorted((i["email"], i["role"]) for i in pending.json["items"]) == [
        ("x4@example.com", "admin"), ("x5@example.com", "member"), ("x6@example.com", "owner")]
    assert_problem(tenancy.get(f"/v1/workspaces/{ws_id}/invitations", headers=alan["headers"]), 403, "forbidden")
    assert_problem(tenancy.get(f"/v1/workspaces/{ws_id}/invitations", headers=mallory["headers"]), 404, "not_found")


UNMAILABLE = [
    "jos\u00e9@example.com",  # accented local part (plain SMTP has no SMTPUTF8)
    '"grace hopper"@example.com', '"grace"@example.com',  # quoted local parts
    "grace@[192.0.2.1]",  # IP-literal domain
    "g" * 65 + "@example.com",  # 65 characters before the @
    "\uff47race@example.com", "\u0131nvitee@example.com", "grace@\uff45xample.com",  # look-alikes
    "grace@example.com\x85",
]


def test_an_address_the_notifier_cannot_mail_is_not_invited(tenancy, people, tenants, tenancy_outbox):
    ada = people.new("ada@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]

    for address in UNMAILABLE:
        response = tenancy.post(f"/v1/workspaces/{ws_id}/invitations", json={"email": address},
                                headers=ada["headers"])
        body = assert_problem(response, 422, "validation_failed")
        assert list(body["errors"]) == ["email"], address
        [message] = body["errors"]["email"]
        assert message.endswith(".") and len(message) > 20, (address, message)
    assert tenancy_outbox.events("tenancy.invitation.created") == []


def test_an_internationalised_domain_is_invited_in_ascii_and_its_owner_accepts(tenancy, people, tenants,
                                                                                tenancy_outbox):
    ada = people.new("ada@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]

    invitation, token = tenants.invite(ada, ws_id, "Grace@B\u00fccher.de")

    assert invitation["email"] == "grace@xn--bcher-kva.de"
    [event] = tenancy_outbox.events("tenancy.invitation.created")
    assert event["data"]["email"] == "grace@xn--bcher-kva.de"
    grace = people.new("grace@b\u00fccher.de")  # signs up typing the Unicode form
    assert [i["id"] for i in tenancy.get("/v1/invitations", headers=grace["headers"]).json["items"]] == [
        invitation["id"]]
    assert tenants.accept(grace, invitation["id"], token).status_code == 200
    assert_problem(tenancy.post(f"/v1/workspaces/{ws_id}/invitations", json={"email": "grace@xn--bcher-kva.de"},
                                headers=ada["headers"]), 409, "already_member")


def test_a_member_is_not_invited_again(tenancy, people, tenants):
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    tenants.join(ada, ws_id, grace)

    for email in ("grace@example.com", "GRACE@example.com", "ada@example.com"):
        assert_problem(tenancy.post(f"/v1/workspaces/{ws_id}/invitations", json={"email": email},
                                    headers=ada["headers"]), 409, "already_member")


def test_one_pending_invitation_per_address_and_workspace(tenancy, people, tenants, tenancy_outbox):
    ada = people.new("ada@example.com")
    created = tenants.organization(ada)
    ws_id = created["workspace"]["id"]
    other = tenants.workspace(ada, created["organization"]["id"], "Other")
    first, _token = tenants.invite(ada, ws_id, "grace@example.com")

    again = tenancy.post(f"/v1/workspaces/{ws_id}/invitations", json={"email": "Grace@example.com", "role": "admin"},
                         headers=ada["headers"])

    assert_problem(again, 409, "invitation_pending")
    assert tenancy.post(f"/v1/workspaces/{other['id']}/invitations", json={"email": "grace@example.com"},
                        headers=ada["headers"]).status_code == 201
    assert [i["id"] for i in tenancy.get(f"/v1/workspaces/{ws_id}/invitations",
                                         headers=ada["headers"]).json["items"]] == [first["id"]]
    assert len(tenancy_outbox.events("tenancy.invitation.created")) == 2


# --- my pending invitations ---------------------------------------------------------------------------

def test_i_see_my_pending_invitations_by_my_verified_email(tenancy, people, tenants):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    created = tenants.organization(ada, "Engines")
    org_id, ws_id = created["organization"]["id"], created["workspace"]["id"]
    invitation, _token = tenants.invite(ada, ws_id, "grace@example.com", role="admin")
    tenants.invite(ada, ws_id, "alan@example.com")

    mine = tenancy.get("/v1/invitations", headers=grace["headers"])

    assert mine.status_code == 200
    [item] = mine.json["items"]
    assert item == {**invitation, "organization": {"id": org_id, "name": "Engines"}}
    assert [i["email"] for i in tenancy.get("/v1/invitations", headers=alan["headers"]).json["items"]] == [
        "alan@example.com"]
    assert tenancy.get("/v1/invitations", headers=ada["headers"]).json["items"] == []


def test_an_unverified_address_sees_and_accepts_no_invitation(tenancy, people, tenants, unverified_person, tenancy_db):
    ada = people.new("ada@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    invitation, token = tenants.invite(ada, ws_id, "una@example.com")
    una = unverified_person("una@example.com")

    assert tenancy.get("/v1/invitations", headers=una["headers"]).json["items"] == []
    assert_problem(tenants.accept(una, invitation["id"], token), 404, "not_found")
    assert_problem(tenancy.delete(f"/v1/invitations/{invitation['id']}", headers=una["headers"]), 404, "not_found")

    assert member_ids(tenancy, ws_id, ada) == {ada["id"]}
    assert_problem(tenancy.get(f"/v1/workspaces/{ws_id}", headers=una["headers"]), 404, "not_found")
    assert stored_invitation(tenancy_db, invitation["id"])["status"] == "pending"


# --- accept -------------------------------------------------------------------------------------------

def test_accept_makes_the_invitee_a_member_with_the_role(tenancy, people, tenants, tenancy_outbox, clock):
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    created = tenants.organization(ada, "Engines")
    org_id, ws_id = created["organization"]["id"], created["workspace"]["id"]
    invitation, token = tenants.invite(ada, ws_id, grace["email"], role="admin")

    accepted = tenants.accept(grace, invitation["id"], token)

    assert accepted.status_code == 200, accepted.json
    assert contains(accepted.json, {"workspace_id": ws_id, "organization_id": org_id, "user_id": grace["id"],
                                    "role": "admin"})
    assert parse_time(accepted.json["joined_at"]) == clock.now
    assert tenancy.get(f"/v1/workspaces/{ws_id}", headers=grace["headers"]).json["role"] == "admin"
    assert tenancy.get(f"/v1/organizations/{org_id}", headers=grace["headers"]).json["role"] == "member"
    assert member_ids(tenancy, ws_id, ada) == {ada["id"], grace["id"]}
    assert tenancy.get("/v1/invitations", headers=grace["headers"]).json["items"] == []
    assert tenancy.get(f"/v1/workspaces/{ws_id}/invitations", headers=ada["headers"]).json["items"] == []
    assert tenancy_outbox.events("tenancy.member.added")[-1]["data"] == {"workspace_id": ws_id,
                                                                         "user_id": grace["id"], "role": "admin"}
    assert_problem(tenants.accept(grace, invitation["id"], token), 400, "token_invalid")  # single use


def test_a_wrong_token_is_refused_and_the_right_one_still_works(tenancy, people, tenants):
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    created = tenants.organization(ada)
    ws_id = created["workspace"]["id"]
    other = tenants.workspace(ada, created["organization"]["id"], "Other")
    invitation, token = tenants.invite(ada, ws_id, grace["email"])
    _other_invitation, other_token = tenants.invite(ada, other["id"], grace["email"])

    for wrong in ("x", token[:-1], token.upper() if token.upper() != token else token.lower(), other_token):
        assert_problem(tenants.accept(grace, invitation["id"], wrong), 400, "token_invalid")
    assert_problem(tenancy.post(f"/v1/invitations/{invitation['id']}/accept", json={}, headers=grace["headers"]),
                   422, "validation_failed")
    assert_problem(tenants.accept(grace, "no-such-invitation", token), 404, "not_found")
    assert_problem(tenancy.get(f"/v1/workspaces/{ws_id}", headers=grace["headers"]), 404, "not_found")

    assert tenants.accept(grace, invitation["id"], token).status_code == 200


def test_only_the_invited_address_accepts(tenancy, people, tenants, tenancy_db):
    ada, grace, mallory = people.new("ada@example.com"), people.new("grace@example.com"), people.new("m@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    invitation, token = tenants.invite(ada, ws_id, grace["email"])

    for person in (mallory, ada):  # even a workspace owner cannot accept on someone's behalf
        assert_problem(tenants.accept(person, invitation["id"], token), 404, "not_found")

    assert member_ids(tenancy, ws_id, ada) == {ada["id"]}
    assert stored_invitation(tenancy_db, invitation["id"])["status"] == "pending"
    assert tenants.accept(grace, invitation["id"], token).status_code == 200


def test_an_invitation_expires_after_seven_days(tenancy, people, tenants, clock, tenancy_outbox):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    for_grace, grace_token = tenants.invite(ada, ws_id, grace["email"])
    for_alan, alan_token = tenants.invite(ada, ws_id, alan["email"])

    clock.advance(WEEK - 1)
    assert tenants.accept(alan, for_alan["id"], alan_token).status_code == 200
    clock.advance(1)

    assert_problem(tenants.accept(grace, for_grace["id"], grace_token), 400, "token_expired")
    assert tenancy.get("/v1/invitations", headers=grace["headers"]).json["items"] == []
    assert tenancy.get(f"/v1/workspaces/{ws_id}/invitations", headers=ada["headers"]).json["items"] == []
    assert_problem(tenancy.get(f"/v1/workspaces/{ws_id}", headers=grace["headers"]), 404, "not_found")

    renewed, renewed_token = tenants.invite(ada, ws_id, grace["email"])  # no longer a pending duplicate
    assert parse_time(renewed["expires_at"]) == clock.now + timedelta(seconds=WEEK)
    assert_problem(tenants.accept(grace, for_grace["id"], grace_token), 400, "token_expired")
    assert tenants.accept(grace, renewed["id"], renewed_token).status_code == 200
    assert member_ids(tenancy, ws_id, ada) == {ada["id"], grace["id"], alan["id"]}


# --- revoke and decline -------------------------------------------------------------------------------

def test_an_admin_revokes_an_invitation(tenancy, people, tenants, tenancy_db):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    tenants.join(ada, ws_id, grace, role="admin")
    invitation, token = tenants.invite(ada, ws_id, alan["email"])

    assert tenancy.delete(f"/v1/invitations/{invitation['id']}", headers=grace["headers"]).status_code == 204

    assert stored_invitation(tenancy_db, invitation["id"])["status"] == "revoked"
    assert tenancy.get("/v1/invitations", headers=alan["headers"]).json["items"] == []
    assert tenancy.get(f"/v1/workspaces/{ws_id}/invitations", headers=ada["headers"]).json["items"] == []
    assert_problem(tenants.accept(alan, invitation["id"], token), 400, "token_invalid")
    assert tenancy.delete(f"/v1/invitations/{invitation['id']}", headers=ada["headers"]).status_code == 204
    again, again_token = tenants.invite(ada, ws_id, alan["email"])  # a new invitation is allowed
    assert tenants.accept(alan, again["id"], again_token).status_code == 200


def test_who_may_not_revoke(tenancy, people, tenants, tenancy_db):
    ada, alan, mallory = people.new("ada@example.com"), people.new("alan@example.com"), people.new("m@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    tenants.join(ada, ws_id, alan)
    invitation, _token = tenants.invite(ada, ws_id, "grace@example.com")

    assert_problem(tenancy.delete(f"/v1/invitations/{invitation['id']}", headers=alan["headers"]), 403, "forbidden")
    assert_problem(tenancy.delete(f"/v1/invitations/{invitation['id']}", headers=mallory["headers"]), 404,
                   "not_found")
    assert_problem(tenancy.delete("/v1/invitations/no-such-invitation", headers=ada["headers"]), 404, "not_found")
    assert stored_invitation(tenancy_db, invitation["id"])["status"] == "pending"


def test_the_invitee_declines(tenancy, people, tenants, tenancy_db):
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    invitation, token = tenants.invite(ada, ws_id, grace["email"])

    assert tenancy.delete(f"/v1/invitations/{invitation['id']}", headers=grace["headers"]).status_code == 204

    assert stored_invitation(tenancy_db, invitation["id"])["status"] == "revoked"
    assert tenancy.get("/v1/invitations", headers=grace["headers"]).json["items"] == []
    assert_problem(tenants.accept(grace, invitation["id"], token), 400, "token_invalid")
    assert_problem(tenancy.get(f"/v1/workspaces/{ws_id}", headers=grace["headers"]), 404, "not_found")


def test_an_accepted_invitation_is_not_revoked(tenancy, people, tenants, tenancy_db, tenancy_outbox):
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    invitation, token = tenants.invite(ada, ws_id, grace["email"])
    assert tenants.accept(grace, invitation["id"], token).status_code == 200

    assert tenancy.delete(f"/v1/invitations/{invitation['id']}", headers=ada["headers"]).status_code == 204

    assert stored_invitation(tenancy_db, invitation["id"])["status"] == "accepted"
    assert member_ids(tenancy, ws_id, ada) == {ada["id"], grace["id"]}
    assert invitation_link(tenancy_outbox, invitation["id"]) == token


# --- at the same time ---------------------------------------------------------------------------------

def test_accepting_twice_at_once_joins_once(tenancy_app, tenancy_db, tenancy, people, tenants):
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    invitation, token = tenants.invite(ada, ws_id, grace["email"])

    def accept():  # a double click on the link in the mail
        return tenancy_app.test_client().post(f"/v1/invitations/{invitation['id']}/accept", json={"token": token},
                                              headers=grace["headers"]).status_code

    held = [("SELECT 1 FROM workspaces WHERE id = :ws FOR UPDATE", {"ws": ws_id}),
            ("SELECT 1 FROM invitations WHERE id = :id FOR UPDATE", {"id": invitation["id"]})]
    statuses = race_past_locks(tenancy_db, held, [accept, accept])

    assert sorted(statuses) == [200, 400]
    assert member_ids(tenancy, ws_id, ada) == {ada["id"], grace["id"]}


def test_inviting_twice_at_once_invites_once(tenancy_app, tenancy_db, tenancy, people, tenants, tenancy_outbox):
    ada = people.new("ada@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]

    def invite():  # a double submit of the invite form
        return tenancy_app.test_client().post(f"/v1/workspaces/{ws_id}/invitations",
                                              json={"email": "grace@example.com"}, headers=ada["headers"]).status_code

    held = [("SELECT 1 FROM workspaces WHERE id = :ws FOR UPDATE", {"ws": ws_id})]
    statuses = race_past_locks(tenancy_db, held, [invite, invite])

    assert sorted(statuses) == [201, 409]
    assert len(tenancy_outbox.events("tenancy.invitation.created")) == 1


def test_accepting_two_invitations_into_one_organization_at_once_joins_it_once(tenancy_app, tenancy_db, tenancy,
                                                                               people, tenants):
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    created = tenants.organization(ada)
    org_id = created["organization"]["id"]
    first, second = created["workspace"]["id"], tenants.workspace(ada, org_id, "Second")["id"]
    invitations = [tenants.invite(ada, ws_id, grace["email"]) for ws_id in (first, second)]

    def accepter(invitation, token):
        return lambda: tenancy_app.test_client().post(f"/v1/invitations/{invitation['id']}/accept",
                                                      json={"token": token}, headers=grace["headers"]).status_code

    held = [("SELECT 1 FROM organizations WHERE id = :org FOR UPDATE", {"org": org_id})]
    statuses = race_past_locks(tenancy_db, held, [accepter(*invitations[0]), accepter(*invitations[1])])

    assert statuses == [200, 200]
    engine = create_engine(tenancy_db)
    try:
        with engine.connect() as conn:
            memberships = conn.execute(text("SELECT role FROM organization_members WHERE organization_id = :org "
                                            "AND user_id = :user"), {"org": org_id, "user": grace["id"]}).all()
    finally:
        engine.dispose()
    assert [row.role for row in memberships] == ["member"]
    assert {w["id"] for w in tenancy.get("/v1/workspaces", headers=grace["headers"]).json["items"]} == {first, second}


# --- preview: what the mail's link invites to, signed out --------------------------------------------

def preview(tenancy, invitation_id: str, token: str):
    return tenancy.post(f"/v1/invitations/{invitation_id}/preview", json={"token": token})


def test_the_link_s_holder_sees_the_organization_workspace_and_inviter_without_signing_in(tenancy, people, tenants,
                                                                                          clock):
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    ws_id = tenants.organization(ada, "Analytical Engines")["workspace"]["id"]
    invitation, token = tenants.invite(ada, ws_id, grace["email"], role="admin")

    shown = preview(tenancy, invitation["id"], token)

    assert shown.status_code == 200, shown.json
    assert contains(shown.json, {"id": invitation["id"], "organization_name": "Analytical Engines",
                                 "workspace_name": invitation["workspace_name"], "inviter_name": "Ada Lovelace",
                                 "email": grace["email"], "role": "admin", "state": "pending", "workspace_id": ws_id})
    assert parse_time(shown.json["expires_at"]) == clock.now + timedelta(seconds=WEEK)
    assert preview(tenancy, invitation["id"], token).status_code == 200  # a read does not spend the token
    assert tenants.accept(grace, invitation["id"], token).status_code == 200
    assert preview(tenancy, invitation["id"], token).json["state"] == "accepted"


def test_a_preview_needs_the_invitation_s_own_token(tenancy, people, tenants):
    ada = people.new("ada@example.com")
    created = tenants.organization(ada)
    other = tenants.workspace(ada, created["organization"]["id"], "Other")
    invitation, token = tenants.invite(ada, created["workspace"]["id"], "grace@example.com")
    _other, other_token = tenants.invite(ada, other["id"], "grace@example.com")

    for wrong in ("x", token[:-1], other_token):
        assert_problem(preview(tenancy, invitation["id"], wrong), 404, "not_found")
    assert_problem(preview(tenancy, "no-such-invitation", token), 404, "not_found")
    assert_problem(tenancy.post(f"/v1/invitations/{invitation['id']}/preview", json={}), 422, "validation_failed")


def test_a_preview_of_an_expired_or_revoked_invitation(tenancy, people, tenants, clock):
    ada = people.new("ada@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    for_grace, grace_token = tenants.invite(ada, ws_id, "grace@example.com")
    for_alan, alan_token = tenants.invite(ada, ws_id, "alan@example.com")
    assert tenancy.delete(f"/v1/invitations/{for_alan['id']}", headers=ada["headers"]).status_code == 204

    assert preview(tenancy, for_alan["id"], alan_token).json["state"] == "revoked"
    clock.advance(WEEK)
    assert_problem(preview(tenancy, for_grace["id"], grace_token), 400, "token_expired")
