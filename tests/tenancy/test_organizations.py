"""Organizations through the tenancy API: create (with the first workspace), list mine, read, settings,
delete, and the authentication every route stands on (tokens verified locally against identity's JWKS,
fetched over HTTP and cached; a verified email to create an organization)."""
from __future__ import annotations

import requests
from sqlalchemy import create_engine, text

from shared.config import DEVELOPMENT_SECRET
from tests.conftest import assert_problem, bearer


def contains(data: dict, expected: dict) -> bool:
    """The contract's fields with these values (additive fields are allowed)."""
    return {key: data.get(key) for key in expected} == expected


def set_organization_role(database_url: str, organization_id: str, user_id: str, role: str) -> None:
    """The API has no route that grants an organization role other than owner (on create) and member (on
    joining a workspace), so the organization-admin rules are exercised by setting the role in the database."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            changed = conn.execute(text("UPDATE organization_members SET role = :role WHERE organization_id = :org "
                                        "AND user_id = :user"), {"role": role, "org": organization_id, "user": user_id})
            assert changed.rowcount == 1
    finally:
        engine.dispose()


# --- create -----------------------------------------------------------------------------------------

def test_create_makes_the_caller_owner_of_the_organization_and_its_first_workspace(tenancy, people, tenancy_outbox):
    ada = people.new("ada@example.com")

    created = tenancy.post("/v1/organizations", json={"name": "Analytical Engines"}, headers=ada["headers"])

    assert created.status_code == 201, created.json
    organization, workspace = created.json["organization"], created.json["workspace"]
    assert organization["name"] == "Analytical Engines" and organization["role"] == "owner"
    assert workspace["name"] == "My Workspace" and workspace["role"] == "owner"
    assert workspace["organization_id"] == organization["id"]
    assert tenancy.get("/v1/organizations", headers=ada["headers"]).json["items"] == [organization]
    switcher = tenancy.get("/v1/workspaces", headers=ada["headers"]).json["items"]
    assert [(w["id"], w["role"], w["organization"]) for w in switcher] == [
        (workspace["id"], "owner", {"id": organization["id"], "name": "Analytical Engines"})]
    members = tenancy.get(f"/v1/workspaces/{workspace['id']}/members", headers=ada["headers"]).json["items"]
    assert [(m["user_id"], m["role"]) for m in members] == [(ada["id"], "owner")]


def test_create_records_the_contract_events(tenancy, people, tenancy_outbox):
    ada = people.new("ada@example.com")

    created = tenancy.post("/v1/organizations", json={"name": "Analytical Engines"}, headers=ada["headers"]).json

    organization_id, workspace_id = created["organization"]["id"], created["workspace"]["id"]
    [org_event] = tenancy_outbox.events("tenancy.organization.created")
    assert contains(org_event["data"], {"organization_id": organization_id, "name": "Analytical Engines",
                                        "owner_id": ada["id"]})
    [workspace_event] = tenancy_outbox.events("tenancy.workspace.created")
    assert contains(workspace_event["data"], {"workspace_id": workspace_id, "organization_id": organization_id,
                                              "name": "My Workspace"})
    [member_event] = tenancy_outbox.events("tenancy.member.added")
    assert contains(member_event["data"], {"workspace_id": workspace_id, "user_id": ada["id"], "role": "owner"})
    for event in (org_event, workspace_event, member_event):
        assert event["specversion"] == "1.0" and event["datacontenttype"] == "application/json"
        assert event["source"] and event["id"] and event["time"]
    assert len({e["id"] for e in (org_event, workspace_event, member_event)}) == 3


def test_the_first_workspace_name_is_configuration(make_tenancy_app, people):
    client = make_tenancy_app(DEFAULT_WORKSPACE_NAME="Home").test_client()
    ada = people.new("ada@example.com")

    created = client.post("/v1/organizations", json={"name": "Analytical Engines"}, headers=ada["headers"])

    assert created.status_code == 201 and created.json["workspace"]["name"] == "Home"


def test_create_refuses_an_invalid_name_and_creates_nothing(tenancy, people, tenancy_outbox):
    ada = people.new("ada@example.com")

    for body in ({}, {"name": ""}, {"name": "   "}, {"name": "x" * 101}, {"name": "Evil\r\nCorp"}, {"name": 7},
                 {"name": "Fine", "owner_id": "someone-else"}):
        response = tenancy.post("/v1/organizations", json=body, headers=ada["headers"])
        assert_problem(response, 422, "validation_failed")

    assert tenancy.get("/v1/organizations", headers=ada["headers"]).json["items"] == []
    assert tenancy_outbox.events() == []


def test_create_needs_a_verified_email(tenancy, unverified_person, tenancy_outbox):
    una = unverified_person("una@example.com")
    # The crafted token is a valid access token: listing works, so the refusal below is about the email.
    assert tenancy.get("/v1/organizations", headers=una["headers"]).status_code == 200

    response = tenancy.post("/v1/organizations", json={"name": "Unverified Inc"}, headers=una["headers"])

    assert_problem(response, 403, "email_not_verified")
    assert tenancy.get("/v1/organizations", headers=una["headers"]).json["items"] == []
    assert tenancy_outbox.events() == []


# --- authentication -----------------------------------------------------------------------------------

def test_every_route_needs_a_valid_bearer_token(tenancy, people):
    ada = people.new("ada@example.com")
    created = tenancy.post("/v1/organizations", json={"name": "Analytical Engines"}, headers=ada["headers"]).json
    org_id, ws_id = created["organization"]["id"], created["workspace"]["id"]
    routes = [("get", "/v1/organizations", None), ("post", "/v1/organizations", {"name": "X"}),
              ("get", f"/v1/organizations/{org_id}", None), ("patch", f"/v1/organizations/{org_id}", {"name": "X"}),
              ("delete", f"/v1/organizations/{org_id}", None), ("get", f"/v1/organizations/{org_id}/workspaces", None),
              ("post", f"/v1/organizations/{org_id}/workspaces", {"name": "X"}), ("get", "/v1/workspaces", None),
              ("get", f"/v1/workspaces/{ws_id}", None), ("patch", f"/v1/workspaces/{ws_id}", {"name": "X"}),
              ("delete", f"/v1/workspaces/{ws_id}", None), ("get", f"/v1/workspaces/{ws_id}/members", None),
              ("patch", f"/v1/workspaces/{ws_id}/members/{ada['id']}", {"role": "member"}),
              ("delete", f"/v1/workspaces/{ws_id}/members/{ada['id']}", None),
              ("post", f"/v1/workspaces/{ws_id}/invitations", {"email": "g@example.com", "role": "member"}),
              ("get", f"/v1/workspaces/{ws_id}/invitations", None), ("get", "/v1/invitations", None),
              ("post", "/v1/invitations/some-id/accept", {"token": "t"}), ("delete", "/v1/invitations/some-id", None)]
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic YWRhOnB3"},
                    bearer(ada["headers"]["Authorization"].split()[1][:-4] + "AAAA")):
        for method, path, body in routes:
            response = getattr(tenancy, method)(path, json=body, headers=headers)
            assert_problem(response, 401, "invalid_token")
            assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    # Nothing above changed anything.
    assert tenancy.get(f"/v1/organizations/{org_id}", headers=ada["headers"]).json["name"] == "Analytical Engines"
    assert len(tenancy.get("/v1/organizations", headers=ada["headers"]).json["items"]) == 1


def test_a_service_token_is_not_a_user_token(tenancy, client, people):
    people.new("ada@example.com")
    issued = client.post("/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": "tenancy",
                                                  "client_secret": DEVELOPMENT_SECRET, "scope": "accounts:read"})
    assert issued.status_code == 200, issued.json

    for method, path, body in (("get", "/v1/organizations", None), ("post", "/v1/organizations", {"name": "Bots"}),
                               ("get", "/v1/workspaces", None), ("get", "/v1/invitations", None)):
        response = getattr(tenancy, method)(path, json=body, headers=bearer(issued.json["access_token"]))
        assert_problem(response, 401, "invalid_token")


def closing_connections(app):
    """Every response says `Connection: close`, so stopping the server leaves no kept-alive connection
    behind that could still answer tenancy (the outage below is then a real one)."""

    def wsgi(environ, start_response):
        def start(status, headers, exc_info=None):
            return start_response(status, [*headers, ("Connection", "close")], exc_info)

        return app(environ, start)

    return wsgi


def test_tenancy_keeps_verifying_tokens_while_identity_is_down(identity_app, live_server, make_tenancy_app, people):
    identity = live_server(closing_connections(identity_app))
    client = make_tenancy_app(IDENTITY_INTERNAL_URL=identity.url).test_client()
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    created = client.post("/v1/organizations", json={"name": "Analytical Engines"}, headers=ada["headers"])
    assert created.status_code == 201, created.json  # the JWKS was fetched over HTTP for this
    org_id, ws_id = created.json["organization"]["id"], created.json["workspace"]["id"]
    assert client.get(f"/v1/workspaces/{ws_id}/members", headers=ada["headers"]).status_code == 200

    identity.stop()
    try:
        requests.get(f"{identity.url}/.well-known/jwks.json", timeout=3)
        raise AssertionError("identity still answers")
    except requests.ConnectionError:
        pass

    read = client.get(f"/v1/organizations/{org_id}", headers=ada["headers"])
    assert read.status_code == 200, read.json
    assert read.json["name"] == "Analytical Engines"
    renamed = client.patch(f"/v1/workspaces/{ws_id}", json={"name": "Engines"}, headers=ada["headers"])
    assert renamed.status_code == 200 and renamed.json["name"] == "Engines"
    # A token the cache has never seen, signed by the same key, is verified too.
    listed = client.get("/v1/organizations", headers=grace["headers"])
    assert listed.status_code == 200 and listed.json == {"items": [], "next": None}
    members = client.get(f"/v1/workspaces/{ws_id}/members", headers=ada["headers"])  # names cached too
    assert members.status_code == 200 and members.json["items"][0]["email"] == "ada@example.com"
    # What needs identity and is not cached says so: grace's name was never looked up.
    invitation = client.post(f"/v1/workspaces/{ws_id}/invitations", json={"email": grace["email"]},
                             headers=ada["headers"])
    assert invitation.status_code == 201, invitation.json
    from support.outbox import Outbox
    from tests.tenancy_fixtures import invitation_link

    outbox = Outbox(client.application.extensions["threshold.tenancy"].settings.database_url)
    try:
        token = invitation_link(outbox, invitation.json["id"])
    finally:
        outbox.engine.dispose()
    accepted = client.post(f"/v1/invitations/{invitation.json['id']}/accept", json={"token": token},
                           headers=grace["headers"])
    assert accepted.status_code == 200, accepted.json
    assert_problem(client.get(f"/v1/workspaces/{ws_id}/members", headers=ada["headers"]), 503,
                   "dependency_unavailable")


def test_what_needs_identity_while_it_is_down_is_a_503_saying_when_to_retry(identity_app, live_server,
                                                                               make_tenancy_app, people):
    identity = live_server(closing_connections(identity_app))
    client = make_tenancy_app(IDENTITY_INTERNAL_URL=identity.url).test_client()
    ada = people.new("ada@example.com")
    created = client.post("/v1/organizations", json={"name": "Analytical Engines"}, headers=ada["headers"])
    assert created.status_code == 201, created.json  # the JWKS is fetched and cached; ada's name is not

    identity.stop()
    response = client.get(f"/v1/workspaces/{created.json['workspace']['id']}/members", headers=ada["headers"])

    assert_problem(response, 503, "dependency_unavailable")
    assert int(response.headers["Retry-After"]) > 0


# --- list and read ------------------------------------------------------------------------------------

def test_list_shows_only_my_organizations_with_my_role(tenancy, people, tenants):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    # Onboarding asks for one.
    assert tenancy.get("/v1/organizations", headers=ada["headers"]).json == {"items": [], "next": None}
    first = tenants.organization(ada, "First")
    second = tenants.organization(ada, "Second")
    navy = tenants.organization(grace, "Navy")
    tenants.join(grace, navy["workspace"]["id"], ada)

    mine = tenancy.get("/v1/organizations", headers=ada["headers"]).json["items"]

    assert sorted((o["id"], o["name"], o["role"]) for o in mine) == sorted([
        (first["organization"]["id"], "First", "owner"), (second["organization"]["id"], "Second", "owner"),
        (navy["organization"]["id"], "Navy", "member")])
    assert [o["id"] for o in tenancy.get("/v1/organizations", headers=grace["headers"]).json["items"]] == [
        navy["organization"]["id"]]
    assert tenancy.get("/v1/organizations", headers=alan["headers"]).json == {"items": [], "next": None}


def test_read_an_organization(tenancy, people, tenants):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    created = tenants.organization(ada)
    org_id = created["organization"]["id"]
    tenants.join(ada, created["workspace"]["id"], grace)

    as_owner = tenancy.get(f"/v1/organizations/{org_id}", headers=ada["headers"])
    as_member = tenancy.get(f"/v1/organizations/{org_id}", headers=grace["headers"])

    assert as_owner.status_code == 200 and as_owner.json == created["organization"]
    assert as_member.status_code == 200 and as_member.json["role"] == "member"
    assert_problem(tenancy.get(f"/v1/organizations/{org_id}", headers=alan["headers"]), 404, "not_found")
    assert_problem(tenancy.get("/v1/organizations/00000000-0000-0000-0000-000000000000", headers=ada["headers"]),
                   404, "not_found")


# --- settings -----------------------------------------------------------------------------------------

def test_owner_and_admin_update_settings_member_may_not(tenancy, people, tenants, tenancy_db):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    created = tenants.organization(ada, "Analytical Engines")
    org_id, ws_id = created["organization"]["id"], created["workspace"]["id"]
    tenants.join(ada, ws_id, grace)
    tenants.join(ada, ws_id, alan, role="owner")  # a workspace owner is still an organization member

    by_owner = tenancy.patch(f"/v1/organizations/{org_id}", json={"name": "Difference Engines"},
                             headers=ada["headers"])
    assert by_owner.status_code == 200 and by_owner.json["name"] == "Difference Engines"
    assert by_owner.json["role"] == "owner"
    for person in (grace, alan):
        assert_problem(tenancy.patch(f"/v1/organizations/{org_id}", json={"name": "Mine now"},
                                     headers=person["headers"]), 403, "forbidden")
    set_organization_role(tenancy_db, org_id, grace["id"], "admin")
    by_admin = tenancy.patch(f"/v1/organizations/{org_id}", json={"name": "Engines"}, headers=grace["headers"])
    assert by_admin.status_code == 200 and by_admin.json == {**by_owner.json, "name": "Engines", "role": "admin"}

    assert tenancy.get(f"/v1/organizations/{org_id}", headers=alan["headers"]).json["name"] == "Engines"
    assert_problem(tenancy.patch(f"/v1/organizations/{org_id}", json={"name": ""}, headers=ada["headers"]),
                   422, "validation_failed")
    unchanged = tenancy.patch(f"/v1/organizations/{org_id}", json={}, headers=ada["headers"])
    assert unchanged.status_code == 200 and unchanged.json["name"] == "Engines"


def test_outsider_cannot_update_settings(tenancy, people, tenants):
    ada, mallory = people.new("ada@example.com"), people.new("mallory@example.com")
    org_id = tenants.organization(ada, "Analytical Engines")["organization"]["id"]
    tenants.organization(mallory, "Mallory's")

    assert_problem(tenancy.patch(f"/v1/organizations/{org_id}", json={"name": "Pwned"}, headers=mallory["headers"]),
                   404, "not_found")
    assert tenancy.get(f"/v1/organizations/{org_id}", headers=ada["headers"]).json["name"] == "Analytical Engines"


# --- delete -------------------------------------------------------------------------------------------

def test_only_the_owner_deletes_an_organization(tenancy, people, tenants, tenancy_db):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    mallory = people.new("mallory@example.com")
    created = tenants.organization(ada)
    org_id, ws_id = created["organization"]["id"], created["workspace"]["id"]
    tenants.join(ada, ws_id, grace, role="admin")
    tenants.join(ada, ws_id, alan, role="owner")

    assert_problem(tenancy.delete(f"/v1/organizations/{org_id}", headers=mallory["headers"]), 404, "not_found")
    assert_problem(tenancy.delete(f"/v1/organizations/{org_id}", headers=alan["headers"]), 403, "forbidden")
    assert_problem(tenancy.delete(f"/v1/organizations/{org_id}", headers=grace["headers"]), 403, "forbidden")
    set_organization_role(tenancy_db, org_id, grace["id"], "admin")
    assert_problem(tenancy.delete(f"/v1/organizations/{org_id}", headers=grace["headers"]), 403, "forbidden")
    assert tenancy.get(f"/v1/organizations/{org_id}", headers=ada["headers"]).status_code == 200

    assert tenancy.delete(f"/v1/organizations/{org_id}", headers=ada["headers"]).status_code == 204


def test_a_delete_answers_204_with_no_content_and_no_content_type(tenancy, people, tenants):
    ada = people.new("ada@example.com")
    org_id = tenants.organization(ada)["organization"]["id"]

    response = tenancy.delete(f"/v1/organizations/{org_id}", headers=ada["headers"])

    assert response.status_code == 204
    assert response.get_data() == b""
    assert "Content-Type" not in response.headers


def test_delete_takes_the_workspaces_memberships_and_invitations_with_it(tenancy, people, tenants):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    created = tenants.organization(ada)
    org_id, ws_id = created["organization"]["id"], created["workspace"]["id"]
    second = tenants.workspace(ada, org_id, "Second")
    tenants.join(ada, second["id"], grace)
    invitation, token = tenants.invite(ada, ws_id, alan["email"])
    kept = tenants.organization(ada, "Kept")

    assert tenancy.delete(f"/v1/organizations/{org_id}", headers=ada["headers"]).status_code == 204

    for person in (ada, grace):
        assert_problem(tenancy.get(f"/v1/organizations/{org_id}", headers=person["headers"]), 404, "not_found")
        for workspace_id in (ws_id, second["id"]):
            assert_problem(tenancy.get(f"/v1/workspaces/{workspace_id}", headers=person["headers"]), 404,
                           "not_found")
    assert [o["id"] for o in tenancy.get("/v1/organizations", headers=ada["headers"]).json["items"]] == [
        kept["organization"]["id"]]
    assert [w["id"] for w in tenancy.get("/v1/workspaces", headers=ada["headers"]).json["items"]] == [
        kept["workspace"]["id"]]
    assert tenancy.get("/v1/organizations", headers=grace["headers"]).json["items"] == []
    assert tenancy.get("/v1/workspaces", headers=grace["headers"]).json["items"] == []
    assert tenancy.get("/v1/invitations", headers=alan["headers"]).json["items"] == []
    assert_problem(tenants.accept(alan, invitation["id"], token), 404, "not_found")
    assert_problem(tenancy.delete(f"/v1/organizations/{org_id}", headers=ada["headers"]), 404, "not_found")


LINKS = ["evil.com", "Visit https://evil.example", "www.evil", "claims@evil.co", "ｅｖｉｌ．ｃｏｍ"]


def test_names_that_read_as_links_are_refused(tenancy, people, tenancy_outbox):
    # An organization's or workspace's name is in the subject and text of every invitation mail: one that
    # reads as a link would be a clickable link the attacker chose (shared/names.py).
    ada = people.new("ada@example.com")
    for name in LINKS:
        response = tenancy.post("/v1/organizations", json={"name": name}, headers=ada["headers"])
        assert list(assert_problem(response, 422, "validation_failed")["errors"]) == ["name"]
    assert tenancy_outbox.events() == []

    org_id = tenancy.post("/v1/organizations", json={"name": "Engines Ltd."}, headers=ada["headers"]).json[
        "organization"]["id"]
    for name in LINKS:
        assert_problem(tenancy.patch(f"/v1/organizations/{org_id}", json={"name": name}, headers=ada["headers"]),
                       422, "validation_failed")
    assert tenancy.get(f"/v1/organizations/{org_id}", headers=ada["headers"]).json["name"] == "Engines Ltd."
