def test_create_organization_and_see_workspace(tenancy, people):
    ada = people.new("ada@example.com")
    created = tenancy.post("/v1/organizations", json={"name": "Analytical"}, headers=ada["headers"])
    assert created.status_code == 201, created.json
    workspace_id = created.json["workspace"]["id"]
    listed = tenancy.get("/v1/workspaces", headers=ada["headers"])
    assert [w["id"] for w in listed.json["items"]] == [workspace_id]
    members = tenancy.get(f"/v1/workspaces/{workspace_id}/members", headers=ada["headers"])
    assert members.status_code == 200, members.json
    assert members.json["items"][0]["email"] == "ada@example.com"
    grace = people.new("grace@example.com")
    assert tenancy.get(f"/v1/workspaces/{workspace_id}", headers=grace["headers"]).status_code == 404
