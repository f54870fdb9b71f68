"""Isolation (SECURITY.md, Tenancy, P0): anyone outside an organization or workspace gets 404 on every
route in it, with the same answer as for an id that does not exist; no list shows a caller anything
outside its memberships.

The property test builds random tenants through the API (organizations, more workspaces, invitations
accepted, declined, revoked or left pending, role changes, members removed or leaving, workspaces and
organizations deleted), predicting the status of every step from a model of the role rules, and then asks,
as every person, every list (page by page, with a small drawn page size) and every read, and every route of
everything the person may not open.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from support.outbox import Outbox
from tests.conftest import assert_problem
from tests.tenancy_fixtures import Tenants, invitation_link, walk

RANK = {None: 0, "member": 1, "admin": 2, "owner": 3}
ROLES = ("member", "admin", "owner")
NOWHERE = "00000000-0000-0000-0000-000000000000"


def organization_routes(org_id: str) -> list[tuple[str, str, dict | None]]:
    return [("get", f"/v1/organizations/{org_id}", None),
            ("patch", f"/v1/organizations/{org_id}", {"name": "Taken over"}),
            ("delete", f"/v1/organizations/{org_id}", None),
            ("get", f"/v1/organizations/{org_id}/workspaces", None),
            ("post", f"/v1/organizations/{org_id}/workspaces", {"name": "Planted"})]


def workspace_routes(ws_id: str, member_id: str) -> list[tuple[str, str, dict | None]]:
    return [("get", f"/v1/workspaces/{ws_id}", None),
            ("patch", f"/v1/workspaces/{ws_id}", {"name": "Taken over"}),
            ("delete", f"/v1/workspaces/{ws_id}", None),
            ("get", f"/v1/workspaces/{ws_id}/members", None),
            ("patch", f"/v1/workspaces/{ws_id}/members/{member_id}", {"role": "member"}),
            ("delete", f"/v1/workspaces/{ws_id}/members/{member_id}", None),
            ("post", f"/v1/workspaces/{ws_id}/invitations", {"email": "planted@example.com", "role": "member"}),
            ("get", f"/v1/workspaces/{ws_id}/invitations", None)]


def invitation_routes(invitation_id: str, token: str) -> list[tuple[str, str, dict | None]]:
    return [("post", f"/v1/invitations/{invitation_id}/accept", {"token": token}),
            ("delete", f"/v1/invitations/{invitation_id}", None)]


def call(client, person: dict, route: tuple[str, str, dict | None]):
    method, path, body = route
    return getattr(client, method)(path, json=body, headers=person["headers"])


def assert_not_found(client, person: dict, route) -> dict:
    response = call(client, person, route)
    assert response.status_code == 404, (route, person["email"], response.get_data(as_text=True))
    return assert_problem(response, 404, "not_found")


# --- every route, one outsider ------------------------------------------------------------------------

def test_every_route_answers_an_outsider_as_if_nothing_were_there(tenancy, people, tenants):
    ada, grace, mallory = people.new("ada@example.com"), people.new("grace@example.com"), people.new("m@example.com")
    created = tenants.organization(ada)
    org_id, ws_id = created["organization"]["id"], created["workspace"]["id"]
    tenants.join(ada, ws_id, grace)
    invitation, token = tenants.invite(ada, ws_id, "alan@example.com")
    mine = tenants.organization(mallory, "Mallory's")  # an outsider with tenants of her own

    routes = (organization_routes(org_id) + workspace_routes(ws_id, grace["id"])
              + invitation_routes(invitation["id"], token))
    nowhere = (organization_routes(NOWHERE) + workspace_routes(NOWHERE, grace["id"])
               + invitation_routes(NOWHERE, token))
    for route, missing in zip(routes, nowhere, strict=True):
        assert assert_not_found(tenancy, mallory, route) == assert_not_found(tenancy, mallory, missing)
    # Her own organization's id does not open anyone else's workspaces either.
    assert_not_found(tenancy, mallory, ("get", f"/v1/workspaces/{ws_id}", None))
    assert_not_found(tenancy, mallory, ("delete", f"/v1/workspaces/{mine['workspace']['id']}/members/{grace['id']}",
                                        None))

    # Nothing above changed anything.
    assert tenancy.get(f"/v1/organizations/{org_id}", headers=ada["headers"]).json["name"] == "Analytical Engines"
    assert {w["name"] for w in tenancy.get("/v1/workspaces", headers=ada["headers"]).json["items"]} == {
        "My Workspace"}
    members = tenancy.get(f"/v1/workspaces/{ws_id}/members", headers=ada["headers"]).json["items"]
    assert {(m["user_id"], m["role"]) for m in members} == {(ada["id"], "owner"), (grace["id"], "member")}
    assert [i["id"] for i in tenancy.get(f"/v1/workspaces/{ws_id}/invitations", headers=ada["headers"]).json["items"]
            ] == [invitation["id"]]


def test_an_insider_short_of_the_role_is_forbidden_not_hidden(tenancy, people, tenants):
    ada, grace = people.new("ada@example.com"), people.new("grace@example.com")
    created = tenants.organization(ada)
    org_id, ws_id = created["organization"]["id"], created["workspace"]["id"]
    tenants.join(ada, ws_id, grace)
    invitation, token = tenants.invite(ada, ws_id, "alan@example.com")

    for route in [*organization_routes(org_id)[1:3], organization_routes(org_id)[4],
                  *workspace_routes(ws_id, ada["id"])[1:3], *workspace_routes(ws_id, ada["id"])[4:],
                  invitation_routes(invitation["id"], token)[1]]:
        assert_problem(call(tenancy, grace, route), 403, "forbidden")


# --- the property -------------------------------------------------------------------------------------

@dataclass
class Org:
    id: str
    members: dict[int, str]  # person -> organization role
    alive: bool = True


@dataclass
class Ws:
    id: str
    org: str
    members: dict[int, str]  # person -> workspace role
    alive: bool = True


@dataclass
class Inv:
    id: str
    ws: str
    email: str
    role: str
    token: str
    status: str = "pending"


@dataclass
class World:
    """The tenancy API on a fresh database and what it should hold."""

    client: object
    tenants: Tenants
    people: list[dict]
    orgs: dict[str, Org] = field(default_factory=dict)
    workspaces: dict[str, Ws] = field(default_factory=dict)
    invitations: dict[str, Inv] = field(default_factory=dict)
    page_size: int = 100  # lists are read a page of this many at a time

    # The role rules, as the model sees them.
    def org_role(self, person: int, org_id: str) -> str | None:
        org = self.orgs[org_id]
        return org.members.get(person) if org.alive else None

    def ws_role(self, person: int, ws_id: str) -> str | None:
        ws = self.workspaces[ws_id]
        if not ws.alive:
            return None
        inherited = self.org_role(person, ws.org)
        inherited = inherited if inherited in ("owner", "admin") else None
        return max(ws.members.get(person), inherited, key=RANK.__getitem__)

    def alive_orgs(self) -> list[str]:
        return [o.id for o in self.orgs.values() if o.alive]

    def alive_workspaces(self) -> list[str]:
        return [w.id for w in self.workspaces.values() if w.alive]

    def pending(self) -> list[Inv]:
        return [i for i in self.invitations.values() if i.status == "pending" and self.workspaces[i.ws].alive]

    def person_by_email(self, email: str) -> int | None:
        return next((n for n, p in enumerate(self.people) if p["email"] == email), None)

    def expect(self, response, status: int, what: str) -> None:
        assert response.status_code == status, (what, response.get_data(as_text=True))

    # Building steps: each predicts its status, checks it, and updates the model on success.
    def create_organization(self, person: int, name: str) -> str:
        created = self.tenants.organization(self.people[person], name)
        org_id, ws_id = created["organization"]["id"], created["workspace"]["id"]
        self.orgs[org_id] = Org(org_id, {person: "owner"})
        self.workspaces[ws_id] = Ws(ws_id, org_id, {person: "owner"})
        return org_id

    def create_workspace(self, person: int, org_id: str, name: str) -> None:
        role = self.org_role(person, org_id)
        status = 404 if role is None else 403 if RANK[role] < RANK["admin"] else 201
        response = self.client.post(f"/v1/organizations/{org_id}/workspaces", json={"name": name},
                                    headers=self.people[person]["headers"])
        self.expect(response, status, f"person {person} creates a workspace in {org_id}")
        if status == 201:
            self.workspaces[response.json["id"]] = Ws(response.json["id"], org_id, {person: "owner"})

    def invite(self, inviter: int, ws_id: str, email: str, role: str, outcome: str) -> None:
        ws, mine = self.workspaces[ws_id], self.ws_role(inviter, ws_id)
        invitee = self.person_by_email(email)
        if mine is None:
            status = 404
        elif RANK[mine] < RANK["admin"] or RANK[role] > RANK[mine]:
            status = 403
        elif invitee is not None and invitee in ws.members:
            status = 409
        elif any(i.ws == ws_id and i.email == email for i in self.pending()):
            status = 409
        else:
            status = 201
        response = self.client.post(f"/v1/workspaces/{ws_id}/invitations", json={"email": email, "role": role},
                                    headers=self.people[inviter]["headers"])
        self.expect(response, status, f"person {inviter} invites {email} into {ws_id} as {role}")
        if status != 201:
            return
        invitation = Inv(response.json["id"], ws_id, email, role, invitation_link(self.tenants.outbox,
                                                                                  response.json["id"]))
        self.invitations[invitation.id] = invitation
        if outcome == "accept" and invitee is not None:
            self.expect(self.tenants.accept(self.people[invitee], invitation.id, invitation.token), 200, "accept")
            invitation.status = "accepted"
            ws.members[invitee] = role
            self.orgs[ws.org].members.setdefault(invitee, "member")
        elif outcome in ("decline", "revoke") and (invitee is not None or outcome == "revoke"):
            by = self.people[invitee if outcome == "decline" else inviter]
            self.expect(self.client.delete(f"/v1/invitations/{invitation.id}", headers=by["headers"]), 204, outcome)
            invitation.status = "revoked"

    def change_role(self, actor: int, ws_id: str, target: int, role: str) -> None:
        ws, mine = self.workspaces[ws_id], self.ws_role(actor, ws_id)
        current = ws.members.get(target)
        owners = sum(1 for r in ws.members.values() if r == "owner")
        if mine is None:
            status = 404
        elif RANK[mine] < RANK["admin"]:
            status = 403
        elif current is None:
            status = 404
        elif "owner" in (current, role) and mine != "owner":
            status = 403
        elif current == "owner" and role != "owner" and owners <= 1:
            status = 409
        else:
            status = 200
        response = self.client.patch(f"/v1/workspaces/{ws_id}/members/{self.people[target]['id']}",
                                     json={"role": role}, headers=self.people[actor]["headers"])
        self.expect(response, status, f"person {actor} makes person {target} {role} in {ws_id}")
        if status == 200:
            ws.members[target] = role

    def remove(self, actor: int, ws_id: str, target: int) -> None:
        ws, mine = self.workspaces[ws_id], self.ws_role(actor, ws_id)
        current = ws.members.get(target)
        owners = sum(1 for r in ws.members.values() if r == "owner")
        acting_as = "owner" if actor == target else mine
        if mine is None:
            status = 404
        elif actor != target and RANK[mine] < RANK["admin"]:
            status = 403
        elif current is None:
            status = 404
        elif current == "owner" and acting_as != "owner":
            status = 403
        elif current == "owner" and owners <= 1:
            status = 409
        else:
            status = 204
        response = self.client.delete(f"/v1/workspaces/{ws_id}/members/{self.people[target]['id']}",
                                      headers=self.people[actor]["headers"])
        self.expect(response, status, f"person {actor} removes person {target} from {ws_id}")
        if status == 204:
            del ws.members[target]
            org = self.orgs[ws.org]
            still_in = any(w.org == ws.org and w.alive and target in w.members for w in self.workspaces.values())
            if org.members.get(target) == "member" and not still_in:
                del org.members[target]

    def delete_workspace(self, actor: int, ws_id: str) -> None:
        ws, mine = self.workspaces[ws_id], self.ws_role(actor, ws_id)
        siblings = [w for w in self.workspaces.values() if w.org == ws.org and w.alive]
        status = 404 if mine is None else 403 if mine != "owner" else 409 if len(siblings) <= 1 else 204
        response = self.client.delete(f"/v1/workspaces/{ws_id}", headers=self.people[actor]["headers"])
        self.expect(response, status, f"person {actor} deletes workspace {ws_id}")
        if status == 204:
            ws.alive = False
            org = self.orgs[ws.org]
            for person in list(ws.members):  # plain org members with no workspace left leave the org
                still_in = any(w.org == ws.org and w.alive and person in w.members for w in self.workspaces.values())
                if org.members.get(person) == "member" and not still_in:
                    del org.members[person]

    def delete_organization(self, actor: int, org_id: str) -> None:
        role = self.org_role(actor, org_id)
        status = 404 if role is None else 403 if role != "owner" else 204
        response = self.client.delete(f"/v1/organizations/{org_id}", headers=self.people[actor]["headers"])
        self.expect(response, status, f"person {actor} deletes organization {org_id}")
        if status == 204:
            self.orgs[org_id].alive = False
            for ws in self.workspaces.values():
                if ws.org == org_id:
                    ws.alive = False

    # The property.
    def check(self, person: int) -> None:
        me, client = self.people[person], self.client
        get = lambda path: client.get(path, headers=me["headers"])  # noqa: E731
        every = lambda path: walk(client, path, me["headers"], self.page_size)  # noqa: E731

        orgs = every("/v1/organizations")
        assert sorted((o["id"], o["role"]) for o in orgs) == sorted(
            (o.id, self.org_role(person, o.id)) for o in self.orgs.values() if self.org_role(person, o.id)), person
        openable = {w.id: self.ws_role(person, w.id) for w in self.workspaces.values() if self.ws_role(person, w.id)}
        switcher = every("/v1/workspaces")
        assert sorted((w["id"], w["role"], w["organization"]["id"]) for w in switcher) == sorted(
            (ws_id, role, self.workspaces[ws_id].org) for ws_id, role in openable.items()), person
        invited = every("/v1/invitations")
        assert sorted(i["id"] for i in invited) == sorted(i.id for i in self.pending() if i.email == me["email"])

        for org in self.orgs.values():
            role = self.org_role(person, org.id)
            if role is None:
                for route in organization_routes(org.id):
                    assert_not_found(client, me, route)
                continue
            assert get(f"/v1/organizations/{org.id}").json["role"] == role
            listed = every(f"/v1/organizations/{org.id}/workspaces")
            assert sorted((w["id"], w["role"]) for w in listed) == sorted(
                (ws_id, r) for ws_id, r in openable.items() if self.workspaces[ws_id].org == org.id)

        for ws in self.workspaces.values():
            role = openable.get(ws.id)
            if role is None:
                someone = next(iter(ws.members), person)
                for route in workspace_routes(ws.id, self.people[someone]["id"]):
                    assert_not_found(client, me, route)
                continue
            read = get(f"/v1/workspaces/{ws.id}")
            assert read.json["role"] == role and read.json["organization"]["id"] == ws.org
            members = every(f"/v1/workspaces/{ws.id}/members")
            ids = {p["id"]: n for n, p in enumerate(self.people)}
            assert sorted((ids[m["user_id"]], m["role"], m["email"]) for m in members) == sorted(
                (n, r, self.people[n]["email"]) for n, r in ws.members.items())
            if RANK[role] >= RANK["admin"]:
                assert sorted(i["id"] for i in every(f"/v1/workspaces/{ws.id}/invitations")) == sorted(
                    i.id for i in self.pending() if i.ws == ws.id)
            else:
                assert_problem(get(f"/v1/workspaces/{ws.id}/invitations"), 403, "forbidden")

        for invitation in self.invitations.values():
            invitee = invitation.email == me["email"] and self.workspaces[invitation.ws].alive
            if not invitee and self.ws_role(person, invitation.ws) is None:
                for route in invitation_routes(invitation.id, invitation.token):
                    assert_not_found(client, me, route)


POOL = 4
STEPS = ["invite", "invite", "invite", "invite", "workspace", "role", "role", "remove", "remove",
         "delete_workspace", "delete_organization"]
names = st.text(alphabet="abcdefghij KLMNOP", min_size=1, max_size=12).filter(lambda s: s.strip())


def test_no_caller_sees_anything_outside_its_memberships(people, databases, backend, make_tenancy_app):
    pool = [people.new(f"person{n}@example.com") for n in range(POOL)]
    outsider = people.new("outsider@example.com")  # never acts and is never invited: sees nothing at all
    strangers = [f"stranger{n}@example.com" for n in range(2)]  # invited, without an account

    # Each example is built over HTTP on a fresh database (about a second); shrinking would take minutes and
    # could outlive the pool's 15-minute access tokens, so a failure reports the example as drawn.
    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None,
              phases=[Phase.explicit, Phase.generate])
    @given(st.data())
    def property_holds(data):
        url = databases.fresh(backend, "services.tenancy")
        app = make_tenancy_app(TENANCY_DATABASE_URL=url)
        outbox = Outbox(url)
        try:
            client = app.test_client()
            world = World(client, Tenants(client, outbox), [*pool, outsider],
                          page_size=data.draw(st.integers(1, 3), "page size"))
            person = st.integers(0, POOL - 1)
            for _ in range(data.draw(st.integers(1, 3), "organizations")):
                owner = data.draw(person, "owner")
                org_id = world.create_organization(owner, data.draw(names, "name"))
                for _ in range(data.draw(st.integers(0, 2), "more workspaces")):
                    world.create_workspace(owner, org_id, data.draw(names, "name"))
            for _ in range(data.draw(st.integers(3, 10), "steps")):
                if not world.alive_orgs():
                    break
                step = data.draw(st.sampled_from(STEPS), "step")
                org_id = data.draw(st.sampled_from(world.alive_orgs()), "organization")
                ws_id = data.draw(st.sampled_from([w for w in world.alive_workspaces()
                                                   if world.workspaces[w].org == org_id]), "workspace")
                # Mostly people with a standing there, so that steps succeed about as often as they are refused.
                members = sorted(world.workspaces[ws_id].members)
                owner = next(p for p, r in world.orgs[org_id].members.items() if r == "owner")
                actor = data.draw(st.one_of(st.just(owner), st.sampled_from(members), person), "actor")
                target = data.draw(st.one_of(st.sampled_from(members), person), "target")
                if step == "invite":
                    newcomers = [p["email"] for n, p in enumerate(pool) if n not in members] + strangers
                    email = data.draw(st.one_of(st.sampled_from(newcomers),
                                                st.sampled_from([p["email"] for p in pool])), "email")
                    outcome = data.draw(st.sampled_from(["accept", "accept", "pending", "decline", "revoke"]),
                                        "outcome")
                    world.invite(actor, ws_id, email, data.draw(st.sampled_from(ROLES), "role"), outcome)
                elif step == "workspace":
                    world.create_workspace(actor, org_id, data.draw(names, "name"))
                elif step == "role":
                    world.change_role(actor, ws_id, target, data.draw(st.sampled_from(ROLES), "role"))
                elif step == "remove":
                    world.remove(actor, ws_id, target)
                elif step == "delete_workspace":
                    world.delete_workspace(actor, ws_id)
                else:
                    world.delete_organization(actor, org_id)
            for someone in range(len(world.people)):
                world.check(someone)
        finally:
            outbox.engine.dispose()
            app.extensions["threshold.tenancy"].session_factory.kw["bind"].dispose()
            databases.drop(url)

    property_holds()
