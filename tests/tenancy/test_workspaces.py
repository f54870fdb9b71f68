"""Workspaces through the tenancy API: create more in an organization, the switcher list, the organization's
list, read, rename, delete. Organization owners and admins open every workspace of the organization with
their organization role; everyone else opens the workspaces they are members of."""
from __future__ import annotations

from tests.conftest import assert_problem
from tests.tenancy.test_organizations import contains, set_organization_role


def ids(response) -> set[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return {item["id"] for item in response.json["items"]}


# --- create -------------------------------------------------------------------------------------------

def test_organization_owner_creates_a_workspace_and_owns_it(tenancy, people, tenants, tenancy_outbox):
    ada = people.new("ada@example.com")
    org_id = tenants.organization(ada)["organization"]["id"]

    created = tenancy.post(f"/v1/organizations/{org_id}/workspaces", json={"name": "Research"}, headers=ada["headers"])

    assert created.status_code == 201, created.json
    workspace = created.json
    assert workspace["name"] == "Research" and workspace["role"] == "owner" and workspace["organization_id"] == org_id
    members = tenancy.get(f"/v1/workspaces/{workspace['id']}/members", headers=ada["headers"]).json["items"]
    assert [(m["user_id"], m["role"]) for m in members] == [(ada["id"], "owner")]
    [event] = [e for e in tenancy_outbox.events("tenancy.workspace.created")
               if e["data"]["workspace_id"] == workspace["id"]]
    assert contains(event["data"], {"workspace_id": workspace["id"], "organization_id": org_id, "name": "Research"})
    assert [e["data"] for e in tenancy_outbox.events("tenancy.member.added")
            if e["data"]["workspace_id"] == workspace["id"]] == [
        {"workspace_id": workspace["id"], "user_id": ada["id"], "role": "owner"}]


def test_organization_admin_creates_workspaces_members_and_workspace_owners_may_not(tenancy, people, tenants,
                                                                                    tenancy_db):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    mallory = people.new("mallory@example.com")
    created = tenants.organization(ada)
    org_id, ws_id = created["organization"]["id"], created["workspace"]["id"]
    tenants.join(ada, ws_id, grace)
    tenants.join(ada, ws_id, alan, role="owner")

    for person in (grace, alan):  # organization members, whatever their workspace role
        assert_problem(tenancy.post(f"/v1/organizations/{org_id}/workspaces", json={"name": "Mine"},
                                    headers=person["headers"]), 403, "forbidden")
    assert_problem(tenancy.post(f"/v1/organizations/{org_id}/workspaces", json={"name": "Mine"},
                                headers=mallory["headers"]), 404, "not_found")
    set_organization_role(tenancy_db, org_id, grace["id"], "admin")
    by_admin = tenancy.post(f"/v1/organizations/{org_id}/workspaces", json={"name": "Grace's"},
                            headers=grace["headers"])

    assert by_admin.status_code == 201 and by_admin.json["role"] == "owner"
    assert ids(tenancy.get(f"/v1/organizations/{org_id}/workspaces", headers=ada["headers"])) == {
        ws_id, by_admin.json["id"]}


def test_create_refuses_an_invalid_name(tenancy, people, tenants):
    ada = people.new("ada@example.com")
    org_id = tenants.organization(ada)["organization"]["id"]

    for body in ({}, {"name": ""}, {"name": "\t"}, {"name": "y" * 101}, {"name": "a\u2028b"}):
        assert_problem(tenancy.post(f"/v1/organizations/{org_id}/workspaces", json=body, headers=ada["headers"]),
                       422, "validation_failed")
    assert len(tenancy.get("/v1/workspaces", headers=ada["headers"]).json["items"]) == 1


# --- lists --------------------------------------------------------------------------------------------

def test_switcher_lists_every_workspace_i_may_open_with_organization_and_role(tenancy, people, tenants, tenancy_db):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    engines = tenants.organization(ada, "Engines")
    engines_id, engines_first = engines["organization"]["id"], engines["workspace"]["id"]
    research = tenants.workspace(ada, engines_id, "Research")
    secret = tenants.workspace(ada, engines_id, "Secret")
    tenants.join(ada, research["id"], grace, role="admin")
    navy = tenants.organization(grace, "Navy")
    tenants.join(ada, engines_first, alan)

    grace_sees = tenancy.get("/v1/workspaces", headers=grace["headers"]).json["items"]
    assert sorted((w["id"], w["name"], w["role"], w["organization"]["id"], w["organization"]["name"])
                  for w in grace_sees) == sorted([
        (research["id"], "Research", "admin", engines_id, "Engines"),
        (navy["workspace"]["id"], "My Workspace", "owner", navy["organization"]["id"], "Navy")])
    assert ids(tenancy.get("/v1/workspaces", headers=ada["headers"])) == {engines_first, research["id"], secret["id"]}
    assert ids(tenancy.get("/v1/workspaces", headers=alan["headers"])) == {engines_first}

    # An organization admin opens every workspace of the organization with the organization role.
    set_organization_role(tenancy_db, engines_id, alan["id"], "admin")
    alan_sees = tenancy.get("/v1/workspaces", headers=alan["headers"]).json["items"]
    assert sorted((w["id"], w["role"]) for w in alan_sees) == sorted(
        [(engines_first, "admin"), (research["id"], "admin"), (secret["id"], "admin")])


def test_the_switcher_answers_exactly_what_its_schema_dumps(tenancy, people, tenants):
    """The switcher writes its JSON itself (it is read on every page): each item is what the published
    `WorkspaceSchema` makes of it, as the organization's workspace list (dumped by flask-smorest through the same
    schema, without the nested organization) answers it: every field present, nothing more, datetimes as the
    schema writes them."""
    from services.tenancy.api.common import WorkspaceSchema

    ada = people.new("ada@example.com")
    engines = tenants.organization(ada, "Engines")
    tenants.workspace(ada, engines["organization"]["id"], "Research")
    first = tenancy.get("/v1/workspaces", query_string={"limit": 1}, headers=ada["headers"])
    assert first.status_code == 200 and first.mimetype == "application/json"
    second = tenancy.get("/v1/workspaces", query_string={"limit": 1, "cursor": first.json["next"]},
                         headers=ada["headers"])
    dumped = tenancy.get(f"/v1/organizations/{engines['organization']['id']}/workspaces", headers=ada["headers"])

    for response in (first, second):
        assert set(response.json) == {"items", "next"}
        assert [set(item) for item in response.json["items"]] == [set(WorkspaceSchema().fields)]
    assert first.json["next"] is not None and second.json["next"] is None
    switcher = sorted(first.json["items"] + second.json["items"], key=lambda item: item["id"])
    assert [item.pop("organization") for item in switcher] == [{"id": engines["organization"]["id"],
                                                               "name": "Engines"}] * 2
    assert switcher == sorted(dumped.json["items"], key=lambda item: item["id"])  # the rest, as the schema dumps it


def test_organization_workspaces_list_shows_what_the_caller_may_open(tenancy, people, tenants):
    ada, grace, mallory = people.new("ada@example.com"), people.new("grace@example.com"), people.new("m@example.com")
    created = tenants.organization(ada)
    org_id, first = created["organization"]["id"], created["workspace"]["id"]
    second = tenants.workspace(ada, org_id, "Second")
    tenants.join(ada, second["id"], grace)

    as_owner = tenancy.get(f"/v1/organizations/{org_id}/workspaces", headers=ada["headers"])
    as_member = tenancy.get(f"/v1/organizations/{org_id}/workspaces", headers=grace["headers"])

    assert ids(as_owner) == {first, second["id"]}
    assert [(w["id"], w["role"]) for w in as_member.json["items"]] == [(second["id"], "member")]
    assert_problem(tenancy.get(f"/v1/organizations/{org_id}/workspaces", headers=mallory["headers"]), 404,
                   "not_found")


# --- read ---------------------------------------------------------------------------------------------

def test_read_a_workspace_with_my_role(tenancy, people, tenants, tenancy_db):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    created = tenants.organization(ada, "Engines")
    org_id, first = created["organization"]["id"], created["workspace"]["id"]
    second = tenants.workspace(ada, org_id, "Second")
    tenants.join(ada, first, grace)
    # A plain organization member opens only the workspaces she is in.
    assert_problem(tenancy.get(f"/v1/workspaces/{second['id']}", headers=grace["headers"]), 404, "not_found")

    as_member = tenancy.get(f"/v1/workspaces/{first}", headers=grace["headers"])
    assert as_member.status_code == 200
    assert as_member.json == {**created["workspace"], "role": "member",
                              "organization": {"id": org_id, "name": "Engines"}}
    # An organization admin role outranks her workspace role and opens every workspace of the organization.
    set_organization_role(tenancy_db, org_id, grace["id"], "admin")
    assert tenancy.get(f"/v1/workspaces/{first}", headers=grace["headers"]).json["role"] == "admin"
    assert tenancy.get(f"/v1/workspaces/{second['id']}", headers=grace["headers"]).json["role"] == "admin"
    assert_problem(tenancy.get(f"/v1/workspaces/{first}", headers=alan["headers"]), 404, "not_found")
    assert_problem(tenancy.get("/v1/workspaces/no-such-workspace", headers=ada["headers"]), 404, "not_found")


def test_organization_owner_opens_a_workspace_created_by_an_admin(tenancy, people, tenants, tenancy_db):
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    created = tenants.organization(ada)
    org_id = created["organization"]["id"]
    tenants.join(ada, created["workspace"]["id"], grace)
    set_organization_role(tenancy_db, org_id, grace["id"], "admin")
    graces = tenants.workspace(grace, org_id, "Grace's")

    seen = tenancy.get(f"/v1/workspaces/{graces['id']}", headers=ada["headers"])

    assert seen.status_code == 200 and seen.json["role"] == "owner"
    members = tenancy.get(f"/v1/workspaces/{graces['id']}/members", headers=ada["headers"]).json["items"]
    assert [m["user_id"] for m in members] == [grace["id"]]  # opened through the organization, not a member


# --- rename -------------------------------------------------------------------------------------------

def test_workspace_owner_and_admin_rename_member_may_not(tenancy, people, tenants):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    mallory = people.new("mallory@example.com")
    created = tenants.organization(ada, "Engines")
    org_id, ws_id = created["organization"]["id"], created["workspace"]["id"]
    tenants.join(ada, ws_id, grace, role="admin")
    tenants.join(ada, ws_id, alan)

    by_owner = tenancy.patch(f"/v1/workspaces/{ws_id}", json={"name": "Mill"}, headers=ada["headers"])
    assert by_owner.status_code == 200 and by_owner.json["name"] == "Mill" and by_owner.json["role"] == "owner"
    by_admin = tenancy.patch(f"/v1/workspaces/{ws_id}", json={"name": "Store"}, headers=grace["headers"])
    assert by_admin.status_code == 200 and by_admin.json["name"] == "Store" and by_admin.json["role"] == "admin"
    assert by_admin.json["organization"] == {"id": org_id, "name": "Engines"}
    assert_problem(tenancy.patch(f"/v1/workspaces/{ws_id}", json={"name": "Alan's"}, headers=alan["headers"]),
                   403, "forbidden")
    assert_problem(tenancy.patch(f"/v1/workspaces/{ws_id}", json={"name": "Pwned"}, headers=mallory["headers"]),
                   404, "not_found")
    assert_problem(tenancy.patch(f"/v1/workspaces/{ws_id}", json={"name": " "}, headers=ada["headers"]),
                   422, "validation_failed")

    assert tenancy.get(f"/v1/workspaces/{ws_id}", headers=alan["headers"]).json["name"] == "Store"


def test_a_workspace_owner_who_is_only_an_organization_member_renames_it(tenancy, people, tenants):
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    created = tenants.organization(ada)
    second = tenants.workspace(ada, created["organization"]["id"], "Second")
    tenants.join(ada, second["id"], grace, role="owner")

    renamed = tenancy.patch(f"/v1/workspaces/{second['id']}", json={"name": "Grace's"}, headers=grace["headers"])

    assert renamed.status_code == 200 and renamed.json["role"] == "owner"
    assert_problem(tenancy.patch(f"/v1/workspaces/{created['workspace']['id']}", json={"name": "Also mine"},
                                 headers=grace["headers"]), 404, "not_found")


# --- delete -------------------------------------------------------------------------------------------

def test_only_a_workspace_owner_deletes_it(tenancy, people, tenants):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    mallory = people.new("mallory@example.com")
    created = tenants.organization(ada)
    org_id, first = created["organization"]["id"], created["workspace"]["id"]
    second = tenants.workspace(ada, org_id, "Second")
    tenants.join(ada, second["id"], grace, role="admin")
    tenants.join(ada, second["id"], alan)

    assert_problem(tenancy.delete(f"/v1/workspaces/{second['id']}", headers=mallory["headers"]), 404, "not_found")
    assert_problem(tenancy.delete(f"/v1/workspaces/{second['id']}", headers=alan["headers"]), 403, "forbidden")
    assert_problem(tenancy.delete(f"/v1/workspaces/{second['id']}", headers=grace["headers"]), 403, "forbidden")
    assert tenancy.get(f"/v1/workspaces/{second['id']}", headers=alan["headers"]).status_code == 200

    assert tenancy.delete(f"/v1/workspaces/{second['id']}", headers=ada["headers"]).status_code == 204

    for person in (ada, grace, alan):
        assert_problem(tenancy.get(f"/v1/workspaces/{second['id']}", headers=person["headers"]), 404, "not_found")
        assert_problem(tenancy.get(f"/v1/workspaces/{second['id']}/members", headers=person["headers"]), 404,
                       "not_found")
    assert ids(tenancy.get("/v1/workspaces", headers=ada["headers"])) == {first}
    assert ids(tenancy.get(f"/v1/organizations/{org_id}/workspaces", headers=ada["headers"])) == {first}
    assert ids(tenancy.get("/v1/workspaces", headers=grace["headers"])) == set()


def test_the_only_workspace_of_an_organization_cannot_be_deleted(tenancy, people, tenants):
    ada = people.new("ada@example.com")
    created = tenants.organization(ada)
    org_id, first = created["organization"]["id"], created["workspace"]["id"]

    assert_problem(tenancy.delete(f"/v1/workspaces/{first}", headers=ada["headers"]), 409, "last_workspace")
    assert tenancy.get(f"/v1/workspaces/{first}", headers=ada["headers"]).status_code == 200

    second = tenants.workspace(ada, org_id, "Second")
    assert tenancy.delete(f"/v1/workspaces/{first}", headers=ada["headers"]).status_code == 204
    assert_problem(tenancy.delete(f"/v1/workspaces/{second['id']}", headers=ada["headers"]), 409, "last_workspace")


def test_a_workspace_owner_who_is_only_an_organization_member_deletes_it(tenancy, people, tenants):
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    created = tenants.organization(ada)
    second = tenants.workspace(ada, created["organization"]["id"], "Second")
    tenants.join(ada, second["id"], grace, role="owner")
    invitation, token = tenants.invite(grace, second["id"], "alan@example.com")

    assert tenancy.delete(f"/v1/workspaces/{second['id']}", headers=grace["headers"]).status_code == 204

    assert_problem(tenancy.get(f"/v1/workspaces/{second['id']}", headers=ada["headers"]), 404, "not_found")
    alan = people.new("alan@example.com")
    assert tenancy.get("/v1/invitations", headers=alan["headers"]).json["items"] == []
    assert_problem(tenants.accept(alan, invitation["id"], token), 404, "not_found")


def test_workspaces_are_independent(tenancy, people, tenants):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    created = tenants.organization(ada)
    first = created["workspace"]["id"]
    second = tenants.workspace(ada, created["organization"]["id"], "Second")
    tenants.join(ada, first, grace)
    tenants.join(ada, second["id"], alan)
    tenants.invite(ada, second["id"], "someone@example.com")

    first_members = tenancy.get(f"/v1/workspaces/{first}/members", headers=grace["headers"]).json["items"]
    second_members = tenancy.get(f"/v1/workspaces/{second['id']}/members", headers=alan["headers"]).json["items"]

    assert {m["user_id"] for m in first_members} == {ada["id"], grace["id"]}
    assert {m["user_id"] for m in second_members} == {ada["id"], alan["id"]}
    assert tenancy.get(f"/v1/workspaces/{first}/invitations", headers=ada["headers"]).json["items"] == []
    for path in (f"/v1/workspaces/{second['id']}", f"/v1/workspaces/{second['id']}/members"):
        assert_problem(tenancy.get(path, headers=grace["headers"]), 404, "not_found")


def test_deleting_a_workspace_takes_its_plain_members_out_of_the_organization(tenancy, people, tenants):
    ada, grace, alan = people.new("ada@example.com"), people.new("grace@example.com"), people.new("alan@example.com")
    org = tenants.organization(ada)
    org_id = org["organization"]["id"]
    doomed = tenants.workspace(ada, org_id, "Doomed")
    kept = org["workspace"]["id"]
    tenants.join(ada, doomed["id"], grace)          # only in the doomed workspace
    tenants.join(ada, doomed["id"], alan)
    tenants.join(ada, kept, alan)                   # also in another one

    assert tenancy.delete(f"/v1/workspaces/{doomed['id']}", headers=ada["headers"]).status_code == 204

    assert_problem(tenancy.get(f"/v1/organizations/{org_id}", headers=grace["headers"]), 404, "not_found")
    assert tenancy.get("/v1/organizations", headers=grace["headers"]).json["items"] == []
    assert tenancy.get(f"/v1/organizations/{org_id}", headers=alan["headers"]).status_code == 200


def test_workspace_names_that_read_as_links_are_refused(tenancy, people, tenants):
    ada = people.new("ada@example.com")
    created = tenants.organization(ada)
    org_id, ws_id = created["organization"]["id"], created["workspace"]["id"]

    for name in ("evil.com", "http://evil.example", "www.evil", "Prize at evil.io/claim"):
        assert_problem(tenancy.post(f"/v1/organizations/{org_id}/workspaces", json={"name": name},
                                    headers=ada["headers"]), 422, "validation_failed")
        assert_problem(tenancy.patch(f"/v1/workspaces/{ws_id}", json={"name": name}, headers=ada["headers"]),
                       422, "validation_failed")

    assert [w["name"] for w in tenancy.get("/v1/workspaces", headers=ada["headers"]).json["items"]] == ["My Workspace"]
