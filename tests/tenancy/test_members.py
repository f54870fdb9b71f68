"""Workspace members through the tenancy API: the list with names and emails (from identity's internal
API, with a client-credentials service token, batched and cached), role changes and removal. Only
owners make or unmake owners; the last owner can neither leave nor be demoted."""
from __future__ import annotations

import uuid

import requests

from services.tenancy.directory import IdentityDirectory
from shared.config import DEVELOPMENT_SECRET
from tests.conftest import assert_problem, bearer
from tests.tenancy.test_organizations import contains
from tests.tenancy_fixtures import race_past_locks


def named(auth, email: str, first_name: str, last_name: str) -> dict:
    """A verified, signed-in person with this name."""
    account = auth.sign_up(email, first_name=first_name, last_name=last_name)
    auth.verify(email)
    signed_in = auth.sign_in(email)
    assert signed_in.status_code == 200, signed_in.json
    return {"id": account["id"], "email": email, "headers": bearer(signed_in.json)}


def roles(tenancy, workspace_id: str, viewer: dict) -> dict[str, str]:
    response = tenancy.get(f"/v1/workspaces/{workspace_id}/members", headers=viewer["headers"])
    assert response.status_code == 200, response.get_data(as_text=True)
    return {m["user_id"]: m["role"] for m in response.json["items"]}


# --- list ---------------------------------------------------------------------------------------------

def test_members_are_listed_with_names_and_emails(tenancy, auth, tenants, people):
    ada = named(auth, "ada@example.com", "Ada", "Lovelace")
    grace = named(auth, "grace@example.com", "Grace", "Hopper")
    mallory = people.new("mallory@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    tenants.join(ada, ws_id, grace, role="admin")

    for viewer in (ada, grace):
        listed = tenancy.get(f"/v1/workspaces/{ws_id}/members", headers=viewer["headers"])
        assert listed.status_code == 200
        assert sorted((m["user_id"], m["email"], m["first_name"], m["last_name"], m["role"])
                      for m in listed.json["items"]) == sorted([
            (ada["id"], "ada@example.com", "Ada", "Lovelace", "owner"),
            (grace["id"], "grace@example.com", "Grace", "Hopper", "admin")])
        assert all(m["joined_at"] for m in listed.json["items"])
    assert_problem(tenancy.get(f"/v1/workspaces/{ws_id}/members", headers=mallory["headers"]), 404, "not_found")


def test_a_plain_member_may_list_members(tenancy, people, tenants):
    ada, alan = people.new("ada@example.com"), people.new("alan@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    tenants.join(ada, ws_id, alan)

    assert roles(tenancy, ws_id, alan) == {ada["id"]: "owner", alan["id"]: "member"}


def test_names_need_tenancys_real_client_secret(make_tenancy_app, people):
    client = make_tenancy_app(TENANCY_CLIENT_SECRET="not-the-secret-identity-knows").test_client()
    ada = people.new("ada@example.com")
    created = client.post("/v1/organizations", json={"name": "Engines"}, headers=ada["headers"])
    assert created.status_code == 201

    listed = client.get(f"/v1/workspaces/{created.json['workspace']['id']}/members", headers=ada["headers"])

    assert_problem(listed, 503, "dependency_unavailable")


class CountingSession(requests.Session):
    """A real HTTP session that remembers which URLs it called."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[str, str, int]] = []

    def request(self, method, url, *args, **kwargs):
        response = super().request(method, url, *args, **kwargs)
        self.calls.append((method, url.split("?")[0], len(kwargs.get("params") or [])))
        return response


def test_the_directory_batches_by_100_and_caches(identity_server, auth):
    known = [auth.sign_up(f"person{i}@example.com", first_name=f"P{i}") for i in range(3)]
    unknown = [str(uuid.uuid4()) for _ in range(147)]
    session = CountingSession()
    directory = IdentityDirectory(identity_server.url, "tenancy", DEVELOPMENT_SECRET, session=session)

    found = directory.accounts([unknown[0], known[0]["id"], *unknown[1:100], known[1]["id"], *unknown[100:],
                                known[2]["id"]])

    assert {i: (a["email"], a["first_name"]) for i, a in found.items()} == {
        k["id"]: (k["email"], k["first_name"]) for k in known}
    accounts_url = f"{identity_server.url}/internal/v1/accounts"
    assert [c for c in session.calls if c[1] == accounts_url] == [("GET", accounts_url, 100), ("GET", accounts_url, 50)]
    assert [c[:2] for c in session.calls if c[1] != accounts_url] == [("POST", f"{identity_server.url}/v1/oauth/token")]

    session.calls.clear()
    assert directory.accounts([known[1]["id"], unknown[5]]) == {known[1]["id"]: found[known[1]["id"]]}
    assert session.calls == []  # both the account and the unknown id are cached


# --- change role --------------------------------------------------------------------------------------

def test_owner_changes_roles_and_records_it(tenancy, people, tenants, tenancy_outbox):
    ada, alan = people.new("ada@example.com"), people.new("alan@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    tenants.join(ada, ws_id, alan)

    promoted = tenancy.patch(f"/v1/workspaces/{ws_id}/members/{alan['id']}", json={"role": "admin"},
                             headers=ada["headers"])

    assert promoted.status_code == 200 and contains(promoted.json, {"user_id": alan["id"], "role": "admin"})
    assert roles(tenancy, ws_id, ada) == {ada["id"]: "owner", alan["id"]: "admin"}
    assert tenancy.get(f"/v1/workspaces/{ws_id}", headers=alan["headers"]).json["role"] == "admin"
    # The new role takes effect at once: an admin renames the workspace.
    renamed = tenancy.patch(f"/v1/workspaces/{ws_id}", json={"name": "Alan's too"}, headers=alan["headers"])
    assert renamed.status_code == 200
    assert [e["data"] for e in tenancy_outbox.events("tenancy.member.role_changed")] == [
        {"workspace_id": ws_id, "user_id": alan["id"], "role": "admin"}]


def test_admin_changes_roles_below_owner_only(tenancy, people, tenants):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    tenants.join(ada, ws_id, grace, role="admin")
    tenants.join(ada, ws_id, alan)

    assert tenancy.patch(f"/v1/workspaces/{ws_id}/members/{alan['id']}", json={"role": "admin"},
                         headers=grace["headers"]).status_code == 200
    assert tenancy.patch(f"/v1/workspaces/{ws_id}/members/{alan['id']}", json={"role": "member"},
                         headers=grace["headers"]).status_code == 200
    assert_problem(tenancy.patch(f"/v1/workspaces/{ws_id}/members/{alan['id']}", json={"role": "owner"},
                                 headers=grace["headers"]), 403, "forbidden")
    assert_problem(tenancy.patch(f"/v1/workspaces/{ws_id}/members/{grace['id']}", json={"role": "owner"},
                                 headers=grace["headers"]), 403, "forbidden")
    assert_problem(tenancy.patch(f"/v1/workspaces/{ws_id}/members/{ada['id']}", json={"role": "admin"},
                                 headers=grace["headers"]), 403, "forbidden")

    assert roles(tenancy, ws_id, ada) == {ada["id"]: "owner", grace["id"]: "admin", alan["id"]: "member"}


def test_a_member_changes_no_roles(tenancy, people, tenants):
    ada, alan, grace = people.new("ada@example.com"), people.new("alan@example.com"), people.new("grace@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    tenants.join(ada, ws_id, alan)
    tenants.join(ada, ws_id, grace)

    for target, role in ((alan, "admin"), (grace, "admin"), (ada, "member")):
        assert_problem(tenancy.patch(f"/v1/workspaces/{ws_id}/members/{target['id']}", json={"role": role},
                                     headers=alan["headers"]), 403, "forbidden")
    assert roles(tenancy, ws_id, ada) == {ada["id"]: "owner", alan["id"]: "member", grace["id"]: "member"}


def test_the_last_owner_cannot_be_demoted(tenancy, people, tenants):
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    tenants.join(ada, ws_id, grace)

    for role in ("admin", "member"):
        assert_problem(tenancy.patch(f"/v1/workspaces/{ws_id}/members/{ada['id']}", json={"role": role},
                                     headers=ada["headers"]), 409, "last_owner")
    assert tenancy.patch(f"/v1/workspaces/{ws_id}/members/{ada['id']}", json={"role": "owner"},
                         headers=ada["headers"]).status_code == 200  # no change is fine

    # With a second owner, either may be demoted, but not both.
    assert tenancy.patch(f"/v1/workspaces/{ws_id}/members/{grace['id']}", json={"role": "owner"},
                         headers=ada["headers"]).status_code == 200
    assert tenancy.patch(f"/v1/workspaces/{ws_id}/members/{ada['id']}", json={"role": "admin"},
                         headers=grace["headers"]).status_code == 200
    assert_problem(tenancy.patch(f"/v1/workspaces/{ws_id}/members/{grace['id']}", json={"role": "member"},
                                 headers=grace["headers"]), 409, "last_owner")
    assert roles(tenancy, ws_id, grace) == {ada["id"]: "admin", grace["id"]: "owner"}


def test_change_role_of_a_non_member_or_from_outside(tenancy, people, tenants):
    ada, alan, mallory = people.new("ada@example.com"), people.new("alan@example.com"), people.new("m@example.com")
    created = tenants.organization(ada)
    ws_id = created["workspace"]["id"]
    other = tenants.workspace(ada, created["organization"]["id"], "Other")
    tenants.join(ada, other["id"], alan)

    assert_problem(tenancy.patch(f"/v1/workspaces/{ws_id}/members/{alan['id']}", json={"role": "admin"},
                                 headers=ada["headers"]), 404, "not_found")
    assert_problem(tenancy.patch(f"/v1/workspaces/{ws_id}/members/{ada['id']}", json={"role": "member"},
                                 headers=mallory["headers"]), 404, "not_found")
    assert_problem(tenancy.patch(f"/v1/workspaces/{other['id']}/members/{alan['id']}", json={"role": "boss"},
                                 headers=ada["headers"]), 422, "validation_failed")
    assert roles(tenancy, other["id"], ada) == {ada["id"]: "owner", alan["id"]: "member"}


# --- remove and leave ---------------------------------------------------------------------------------

def test_admin_removes_a_member_who_loses_the_workspace_and_organization(tenancy, people, tenants, tenancy_outbox):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    created = tenants.organization(ada)
    org_id, ws_id = created["organization"]["id"], created["workspace"]["id"]
    tenants.join(ada, ws_id, grace, role="admin")
    tenants.join(ada, ws_id, alan)

    assert tenancy.delete(f"/v1/workspaces/{ws_id}/members/{alan['id']}", headers=grace["headers"]).status_code == 204

    assert roles(tenancy, ws_id, ada) == {ada["id"]: "owner", grace["id"]: "admin"}
    assert_problem(tenancy.get(f"/v1/workspaces/{ws_id}", headers=alan["headers"]), 404, "not_found")
    assert_problem(tenancy.get(f"/v1/organizations/{org_id}", headers=alan["headers"]), 404, "not_found")
    assert tenancy.get("/v1/organizations", headers=alan["headers"]).json["items"] == []
    assert tenancy.get("/v1/workspaces", headers=alan["headers"]).json["items"] == []
    assert [e["data"] for e in tenancy_outbox.events("tenancy.member.removed")] == [
        {"workspace_id": ws_id, "user_id": alan["id"], "role": "member"}]
    assert_problem(tenancy.delete(f"/v1/workspaces/{ws_id}/members/{alan['id']}", headers=grace["headers"]), 404,
                   "not_found")


def test_a_member_removed_from_one_workspace_keeps_the_others(tenancy, people, tenants):
    ada, alan = people.new("ada@example.com"), people.new("alan@example.com")
    created = tenants.organization(ada)
    org_id, first = created["organization"]["id"], created["workspace"]["id"]
    second = tenants.workspace(ada, org_id, "Second")
    tenants.join(ada, first, alan)
    tenants.join(ada, second["id"], alan)

    assert tenancy.delete(f"/v1/workspaces/{first}/members/{alan['id']}", headers=ada["headers"]).status_code == 204

    assert [w["id"] for w in tenancy.get("/v1/workspaces", headers=alan["headers"]).json["items"]] == [second["id"]]
    assert tenancy.get(f"/v1/organizations/{org_id}", headers=alan["headers"]).json["role"] == "member"


def test_who_may_remove_whom(tenancy, people, tenants):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    edsger, mallory = people.new("edsger@example.com"), people.new("mallory@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    tenants.join(ada, ws_id, grace, role="admin")
    tenants.join(ada, ws_id, alan)
    tenants.join(ada, ws_id, edsger, role="owner")

    assert_problem(tenancy.delete(f"/v1/workspaces/{ws_id}/members/{grace['id']}", headers=alan["headers"]), 403,
                   "forbidden")  # a member removes no one but themselves
    assert_problem(tenancy.delete(f"/v1/workspaces/{ws_id}/members/{edsger['id']}", headers=grace["headers"]), 403,
                   "forbidden")  # an admin does not remove owners
    assert_problem(tenancy.delete(f"/v1/workspaces/{ws_id}/members/{alan['id']}", headers=mallory["headers"]), 404,
                   "not_found")
    assert_problem(tenancy.delete(f"/v1/workspaces/{ws_id}/members/{mallory['id']}", headers=ada["headers"]), 404,
                   "not_found")
    assert roles(tenancy, ws_id, ada) == {ada["id"]: "owner", grace["id"]: "admin", alan["id"]: "member",
                                          edsger["id"]: "owner"}

    assert tenancy.delete(f"/v1/workspaces/{ws_id}/members/{edsger['id']}", headers=ada["headers"]).status_code == 204
    assert tenancy.delete(f"/v1/workspaces/{ws_id}/members/{grace['id']}", headers=grace["headers"]).status_code == 204
    assert roles(tenancy, ws_id, ada) == {ada["id"]: "owner", alan["id"]: "member"}


def test_a_member_leaves(tenancy, people, tenants, tenancy_outbox):
    ada, alan = people.new("ada@example.com"), people.new("alan@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    tenants.join(ada, ws_id, alan)

    assert tenancy.delete(f"/v1/workspaces/{ws_id}/members/{alan['id']}", headers=alan["headers"]).status_code == 204

    assert roles(tenancy, ws_id, ada) == {ada["id"]: "owner"}
    assert tenancy.get("/v1/organizations", headers=alan["headers"]).json["items"] == []
    assert tenancy_outbox.events("tenancy.member.removed")[-1]["data"] == {"workspace_id": ws_id,
                                                                          "user_id": alan["id"], "role": "member"}


def test_the_last_owner_cannot_leave(tenancy, people, tenants):
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    created = tenants.organization(ada)
    ws_id = created["workspace"]["id"]
    second = tenants.workspace(ada, created["organization"]["id"], "Second")
    tenants.join(ada, second["id"], grace, role="owner")
    removed = tenancy.delete(f"/v1/workspaces/{second['id']}/members/{ada['id']}", headers=grace["headers"])
    assert removed.status_code == 204

    # Grace is now the only owner of `second`, and only an organization member.
    assert_problem(tenancy.delete(f"/v1/workspaces/{second['id']}/members/{grace['id']}", headers=grace["headers"]),
                   409, "last_owner")
    assert_problem(tenancy.delete(f"/v1/workspaces/{ws_id}/members/{ada['id']}", headers=ada["headers"]), 409,
                   "last_owner")
    assert roles(tenancy, second["id"], grace) == {grace["id"]: "owner"}
    assert roles(tenancy, ws_id, ada) == {ada["id"]: "owner"}


def test_an_organization_owner_who_left_a_workspace_still_opens_it_as_owner(tenancy, people, tenants):
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    tenants.join(ada, ws_id, grace, role="owner")

    assert tenancy.delete(f"/v1/workspaces/{ws_id}/members/{ada['id']}", headers=ada["headers"]).status_code == 204

    assert roles(tenancy, ws_id, grace) == {grace["id"]: "owner"}
    assert tenancy.get(f"/v1/workspaces/{ws_id}", headers=ada["headers"]).json["role"] == "owner"


# --- at the same time ---------------------------------------------------------------------------------

def held_workspace(ws_id: str) -> list[tuple[str, dict]]:
    return [("SELECT 1 FROM workspaces WHERE id = :ws FOR UPDATE", {"ws": ws_id}),
            ("SELECT 1 FROM workspace_members WHERE workspace_id = :ws FOR UPDATE", {"ws": ws_id})]


def test_two_owners_demoting_themselves_at_once_leave_one_owner(tenancy_app, tenancy_db, tenancy, people, tenants):
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    tenants.join(ada, ws_id, grace, role="owner")

    def demote(person):
        return lambda: tenancy_app.test_client().patch(f"/v1/workspaces/{ws_id}/members/{person['id']}",
                                                       json={"role": "admin"}, headers=person["headers"]).status_code

    statuses = race_past_locks(tenancy_db, held_workspace(ws_id), [demote(ada), demote(grace)])

    assert sorted(statuses) == [200, 409]
    assert list(roles(tenancy, ws_id, ada).values()).count("owner") == 1


def test_two_owners_leaving_at_once_leave_one_owner(tenancy_app, tenancy_db, tenancy, people, tenants):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    ws_id = tenants.organization(ada)["workspace"]["id"]
    tenants.join(ada, ws_id, grace, role="owner")
    tenants.join(ada, ws_id, alan)

    def leave(person):
        return lambda: tenancy_app.test_client().delete(f"/v1/workspaces/{ws_id}/members/{person['id']}",
                                                        headers=person["headers"]).status_code

    statuses = race_past_locks(tenancy_db, held_workspace(ws_id), [leave(ada), leave(grace)])

    assert sorted(statuses) == [204, 409]
    assert list(roles(tenancy, ws_id, alan).values()).count("owner") == 1
