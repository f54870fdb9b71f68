"""`GET /readyz/serving`, what load balancers probe: ready when what requests need answers (the
database), whatever the bus does; `/readyz` still checks both (CONTRACT.md)."""
from __future__ import annotations

import pytest

from tests.conftest import assert_problem
from tests.test_service_surface import CLOSED_BROKER, build, service_databases, unreachable_database_app  # noqa: F401

API_SERVICES = ["identity", "tenancy"]


@pytest.fixture(params=API_SERVICES)
def api_service(request) -> str:
    return request.param


def test_a_broker_outage_leaves_an_api_ready_to_serve(api_service, service_databases, tmp_path, clock):
    app = build(api_service, service_databases.fresh(api_service), tmp_path, broker_url=CLOSED_BROKER, clock=clock)
    client = app.test_client()

    serving = client.get("/readyz/serving")
    assert serving.status_code == 200, serving.get_data(as_text=True)
    assert serving.get_json() == {"status": "ready", "checks": {"database": "ok"}}
    body = assert_problem(client.get("/readyz"), 503, "not_ready")
    assert body["checks"]["bus"].startswith("failed")


def test_an_unreachable_database_makes_an_api_unready_on_both(api_service, service_databases, tmp_path, clock):
    client = unreachable_database_app(api_service, service_databases, tmp_path, clock).test_client()

    serving = assert_problem(client.get("/readyz/serving"), 503, "not_ready")
    assert serving["checks"] == {"database": serving["checks"]["database"]}
    assert serving["checks"]["database"].startswith("failed")
    assert "database" in serving["detail"]
    assert_problem(client.get("/readyz"), 503, "not_ready")
