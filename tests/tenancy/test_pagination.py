"""Pages of every tenancy list: `limit` (1 to 100, default 50) and an opaque `cursor` from the previous
page's `next`, keyset-ordered so that a walk sees every item once even while the list changes. A cursor
the list did not give out is 422, never a 500, and a forged position shows nothing the caller may not see."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import assert_problem
from tests.tenancy.test_members import named
from tests.tenancy_fixtures import walk


def list_routes(org_id: str, ws_id: str) -> list[str]:
    return ["/v1/organizations", f"/v1/organizations/{org_id}/workspaces", "/v1/workspaces",
            f"/v1/workspaces/{ws_id}/members", f"/v1/workspaces/{ws_id}/invitations", "/v1/invitations"]


def list_name(path: str) -> tuple[str, int]:
    """The name a cursor of this list carries and how many order values it holds."""
    if path.endswith("/members"):
        return "members", 2
    if path.endswith("/invitations"):
        return "invitations", 2
    if path.endswith("/workspaces"):
        return "workspaces", 4
    return "organizations", 2


def encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def cursor(*values) -> str:
    """A cursor in the format the API gives out (base64url of a JSON array), with any values at all."""
    return encoded(json.dumps(list(values)).encode())


def when(item: dict) -> datetime:
    return datetime.fromisoformat(item.get("created_at") or item["joined_at"])


@pytest.fixture
def lists(tenancy, auth, people, tenants, clock) -> dict[str, tuple[dict, str]]:
    """Every list route with several items, some created at the same instant (ordered by id) and some
    later; returns {path: (the person who reads it, the field naming an item)}."""
    ada = named(auth, "ada@example.com", "Ada", "Lovelace")
    grace = people.new("grace@example.com")
    first = tenants.organization(ada, "Org 0")
    org_id, ws_id = first["organization"]["id"], first["workspace"]["id"]
    for n in range(1, 5):
        clock.advance(n % 2)
        tenants.organization(ada, f"Org {n}")
    for n in range(4):
        clock.advance(n % 2)
        workspace = tenants.workspace(ada, org_id, f"Workspace {n}")
        tenants.invite(ada, workspace["id"], grace["email"])
    for n, (first_name, last_name) in enumerate([("Grace", "Hopper"), ("Alan", "Turing"), ("Edsger", "Dijkstra")]):
        clock.advance(n % 2)
        tenants.join(ada, ws_id, named(auth, f"{first_name.lower()}@example.org", first_name, last_name))
    for n in range(4):
        clock.advance(n % 2)
        tenants.invite(ada, ws_id, f"stranger{n}@example.com")
    routes = list_routes(org_id, ws_id)
    readers = {path: (grace if path == "/v1/invitations" else ada) for path in routes}
    return {path: (readers[path], "user_id" if path.endswith("/members") else "id") for path in routes}


# --- walking ------------------------------------------------------------------------------------------

def test_every_list_pages_through_every_item_once_in_order(tenancy, lists):
    for path, (reader, key) in lists.items():
        whole = tenancy.get(path, query_string={"limit": 100}, headers=reader["headers"])
        assert whole.status_code == 200 and whole.json["next"] is None, (path, whole.json)
        items = whole.json["items"]
        assert len(items) >= 4 and len({item[key] for item in items}) == len(items), (path, items)
        if path != "/v1/workspaces":  # the switcher goes by organization first, then workspace
            assert [when(item) for item in items] == sorted(when(item) for item in items), path
        for limit in (1, 2, 3):
            assert walk(tenancy, path, reader["headers"], limit) == items, (path, limit)


def test_a_walk_sees_each_item_once_while_the_list_changes(tenancy, people, tenants, clock):
    ada = people.new("ada@example.com")
    before = [tenants.organization(ada, f"Org {n}")["organization"]["id"] for n in range(7)]  # one instant: by id
    at_once, later, deleted = [], [], []

    def change(seen: list[dict]) -> None:
        # On the first three pages: one more at the last instant (it may sort before the cursor, or after),
        # one later (after every other), and one already seen goes: with OFFSET the walk would skip an item
        # or show one twice.
        if len(later) == 3:
            return
        at_once.append(tenants.organization(ada, "At once")["organization"]["id"])
        clock.advance(1)
        later.append(tenants.organization(ada, "Later")["organization"]["id"])
        gone = next(item["id"] for item in seen if item["id"] not in deleted)
        assert tenancy.delete(f"/v1/organizations/{gone}", headers=ada["headers"]).status_code == 204
        deleted.append(gone)

    walked = [item["id"] for item in walk(tenancy, "/v1/organizations", ada["headers"], 2, between=change)]

    assert len(walked) == len(set(walked))
    assert sorted(i for i in walked if i in before) == sorted(before)
    assert set(later) <= set(walked) and len(later) == 3
    now = [item["id"] for item in tenancy.get("/v1/organizations", query_string={"limit": 100},
                                              headers=ada["headers"]).json["items"]]
    assert [i for i in walked if i in now] == [i for i in now if i in walked]  # the list's own order


# --- limit --------------------------------------------------------------------------------------------

def test_limit_is_1_to_100_and_50_by_default(tenancy, people, tenants):
    ada = people.new("ada@example.com")
    created = [tenants.organization(ada, f"Org {n}") for n in range(51)]
    org_id, ws_id = created[0]["organization"]["id"], created[0]["workspace"]["id"]

    first = tenancy.get("/v1/organizations", headers=ada["headers"])
    assert len(first.json["items"]) == 50 and first.json["next"]
    rest = tenancy.get("/v1/organizations", query_string={"cursor": first.json["next"]}, headers=ada["headers"])
    assert len(rest.json["items"]) == 1 and rest.json["next"] is None
    assert len(tenancy.get("/v1/workspaces", query_string={"limit": 100}, headers=ada["headers"]).json["items"]) == 51
    for path in list_routes(org_id, ws_id):
        assert tenancy.get(path, query_string={"limit": 1}, headers=ada["headers"]).status_code == 200, path
        for limit in ("0", "101", "-1", "1000000000000000000000", "ten", "1.5", ""):
            problem = assert_problem(tenancy.get(path, query_string={"limit": limit}, headers=ada["headers"]),
                                     422, "validation_failed")
            assert set(problem["errors"]) == {"limit"}, (path, limit, problem)


# --- cursors ------------------------------------------------------------------------------------------

def bad_cursors(name: str, values: int) -> list[str]:
    moment, some_id = "2026-01-01T00:00:00+00:00", "00000000-0000-0000-0000-000000000000"
    good = [moment, some_id] * (values // 2)

    def position(*changed) -> list:
        return [*changed, *good[len(changed):]]

    return [
        "not a cursor", "!!!!", "a", encoded(b"\xff\xfe\x00"), encoded(b"{}"), encoded(b"[" * 150 + b"]" * 150),
        encoded(b"null"), "x" * 513, "\u00e9t\u00e9", cursor(name), cursor(name, *good, some_id),
        cursor("nothing", *good), cursor(*good),
        cursor(name, *position("2026-01-01T00:00:00")),  # no time zone
        cursor(name, *position("0001-01-01T00:00:00+01:00")),  # before year 1 in UTC
        cursor(name, *position("9999-12-31T23:59:59-01:00")),  # after year 9999 in UTC
        cursor(name, *position("yesterday")), cursor(name, *position(5)), cursor(name, *position(None)),
        cursor(name, *position(moment, "a\x00b")), cursor(name, *position(moment, "")),
        cursor(name, *position(moment, "x" * 65)), cursor(name, *position(moment, "\u00e9")),
        cursor(name, *position(moment, ["nested"])), cursor(name, *position(1e999)),
    ]


def test_a_cursor_the_list_did_not_give_out_is_422_never_500(tenancy, lists):
    cursors = {path: tenancy.get(path, query_string={"limit": 1}, headers=reader["headers"]).json["next"]
               for path, (reader, _key) in lists.items()}
    assert all(cursors.values()), cursors
    for path, (reader, _key) in lists.items():
        name, values = list_name(path)
        others = [c for other, c in cursors.items() if list_name(other)[0] != name]
        for bad in bad_cursors(name, values) + others:
            response = tenancy.get(path, query_string={"limit": 1, "cursor": bad}, headers=reader["headers"])
            problem = assert_problem(response, 422, "validation_failed")
            assert set(problem["errors"]) == {"cursor"}, (path, bad, problem)
        # The list's own cursor, with padding or without, goes on.
        for own in (cursors[path], cursors[path] + "=" * (-len(cursors[path]) % 4)):
            again = tenancy.get(path, query_string={"limit": 1, "cursor": own}, headers=reader["headers"])
            assert again.status_code == 200 and again.json["items"], (path, again.json)


def test_a_forged_position_shows_nothing_outside_the_callers_lists(tenancy, people, tenants):
    ada, mallory = people.new("ada@example.com"), people.new("mallory@example.com")
    theirs = tenants.organization(ada, "Engines")
    tenants.invite(ada, theirs["workspace"]["id"], "someone@example.com")
    mine = tenants.organization(mallory, "Mallory's")
    org_id, ws_id = theirs["organization"]["id"], theirs["workspace"]["id"]

    def forged(path: str) -> dict:
        name, values = list_name(path)
        return {"cursor": cursor(name, *["1970-01-01T00:00:00+00:00", "0"] * (values // 2))}

    for path, own in (("/v1/organizations", mine["organization"]), ("/v1/workspaces", mine["workspace"])):
        listed = tenancy.get(path, query_string=forged(path), headers=mallory["headers"])
        assert listed.status_code == 200 and [item["id"] for item in listed.json["items"]] == [own["id"]], listed.json
    for path in (f"/v1/organizations/{org_id}/workspaces", f"/v1/workspaces/{ws_id}/members",
                 f"/v1/workspaces/{ws_id}/invitations"):
        assert_problem(tenancy.get(path, query_string=forged(path), headers=mallory["headers"]), 404, "not_found")
    invited = tenancy.get("/v1/invitations", query_string=forged("/v1/invitations"), headers=mallory["headers"])
    assert invited.status_code == 200 and invited.json == {"items": [], "next": None}


text = st.text(st.characters(exclude_categories=["Cs"]), max_size=80)  # anything a query string can carry
offsets = st.integers(-1439, 1439).map(lambda minutes: timezone(timedelta(minutes=minutes)))
moments = st.one_of(st.datetimes(timezones=offsets), st.datetimes()).map(datetime.isoformat)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | text,
                           lambda inner: st.lists(inner, max_size=3), max_leaves=6)


def test_no_cursor_whatever_it_holds_makes_a_500(tenancy, lists):
    anything = st.one_of(st.text(st.characters(exclude_categories=["Cs"]), max_size=600),
                         st.lists(json_values, max_size=5).map(lambda values: cursor(*values)))
    value = st.one_of(moments, st.uuids().map(str), text, json_values)

    @settings(max_examples=300, deadline=None, database=None)
    @given(data=st.data())
    def answers(data):
        path = data.draw(st.sampled_from(sorted(lists)), "path")
        name, values = list_name(path)
        shaped = st.lists(value, min_size=values, max_size=values).map(lambda position: cursor(name, *position))
        raw = data.draw(st.one_of(anything, shaped), "cursor")
        response = tenancy.get(path, query_string={"cursor": raw}, headers=lists[path][0]["headers"])
        if response.status_code != 200:
            assert set(assert_problem(response, 422, "validation_failed")["errors"]) == {"cursor"}, (path, raw)

    answers()


# --- members: names for a page, one lookup --------------------------------------------------------------

def account_lookups(identity_url: str) -> float:
    """How many times identity has answered its internal accounts route, from its own /metrics."""
    text = requests.get(f"{identity_url}/metrics", timeout=5).text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "threshold_http_requests_total" and sample.labels.get("service") == "identity"
               and sample.labels.get("route") == "/internal/v1/accounts")


def test_each_page_of_members_carries_names_from_one_identity_lookup(make_tenancy_app, tenants, auth, identity_server,
                                                                    clock):
    names = [("Ada", "Lovelace"), ("Grace", "Hopper"), ("Alan", "Turing"), ("Edsger", "Dijkstra"),
             ("Barbara", "Liskov"), ("Donald", "Knuth"), ("Frances", "Allen")]
    people = [named(auth, f"{first.lower()}@example.com", first, last) for first, last in names]
    ws_id = tenants.organization(people[0])["workspace"]["id"]
    for person in people[1:]:
        clock.advance(1)  # members are listed in the order they joined
        tenants.join(people[0], ws_id, person)
    cold = make_tenancy_app().test_client()  # a second process on the same database: nobody's name is cached yet
    lookups = []

    def count(_seen) -> None:
        lookups.append(account_lookups(identity_server.url))

    lookups.append(account_lookups(identity_server.url))
    members = walk(cold, f"/v1/workspaces/{ws_id}/members", people[0]["headers"], 3, between=count)
    lookups.append(account_lookups(identity_server.url))

    assert [(m["first_name"], m["last_name"], m["email"]) for m in members] == [
        (first, last, f"{first.lower()}@example.com") for first, last in names]
    assert [b - a for a, b in zip(lookups, lookups[1:], strict=False)] == [1, 1, 1]  # three pages, one lookup each


# --- the OpenAPI document -------------------------------------------------------------------------------

def test_the_openapi_document_describes_limit_cursor_and_next_on_every_list(tenancy):
    spec = tenancy.get("/openapi.json").json
    for path in list_routes("{organization_id}", "{workspace_id}"):
        operation = spec["paths"][path]["get"]
        parameters = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
        assert parameters["limit"]["schema"] == {"type": "integer", "default": 50, "minimum": 1, "maximum": 100}
        assert parameters["cursor"]["schema"]["type"] == "string" and parameters["cursor"]["description"]
        reference = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        page = spec["components"]["schemas"][reference.rsplit("/", 1)[-1]]["properties"]
        assert page["next"]["nullable"] is True and page["items"]["type"] == "array", path
