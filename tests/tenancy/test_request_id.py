"""One request id across services: tenancy forwards the caller's X-Request-ID on its internal calls
to identity, and stamps it on the events it writes."""
from __future__ import annotations

import pytest

from tests.conftest import LiveServer


@pytest.fixture
def recorded_identity(identity_app):
    """Identity behind a WSGI wrapper that notes the X-Request-ID of every internal call it gets."""
    seen: list[str | None] = []

    def recording(environ, start_response):
        if environ["PATH_INFO"].startswith("/internal/"):
            seen.append(environ.get("HTTP_X_REQUEST_ID"))
        return identity_app(environ, start_response)

    server = LiveServer(recording)
    yield server, seen
    server.stop()


def test_the_request_id_travels_to_identity_and_into_events(recorded_identity, make_tenancy_app, people,
                                                            tenancy_outbox):
    server, seen = recorded_identity
    tenancy = make_tenancy_app(IDENTITY_INTERNAL_URL=server.url).test_client()
    ada = people.new("ada@example.com")

    created = tenancy.post("/v1/organizations", json={"name": "Traced"},
                           headers={**ada["headers"], "X-Request-ID": "trace-create-1"})
    assert created.status_code == 201 and created.headers["X-Request-ID"] == "trace-create-1"
    events = tenancy_outbox.events("tenancy.organization.created")
    assert [e.get("requestid") for e in events] == ["trace-create-1"]

    workspace_id = created.json["workspace"]["id"]
    listed = tenancy.get(f"/v1/workspaces/{workspace_id}/members",
                         headers={**ada["headers"], "X-Request-ID": "trace-members-2"})
    assert listed.status_code == 200
    assert seen == ["trace-members-2"]
