"""The templates' `url_for` (services/web/urls.py) builds every URL exactly as Flask's `url_for` does: the
URLs it remembers, the route shapes it fills in with plain ids, and everything it leaves to Flask."""
from __future__ import annotations

import pytest
from flask import url_for
from werkzeug.routing import BaseConverter

from tests.conftest import service_app

CASES = [
    ("workspaces.workspace", {"workspace_id": "0b6f8f0e-1c2d-4e5f-8a9b-123456789abc"}),
    ("workspaces.workspace", {"workspace_id": "a b/c?d#e"}),  # not plain: quoted by werkzeug
    ("workspaces.workspace", {"workspace_id": ".."}),
    ("workspaces.workspace", {"workspace_id": "x", "_anchor": "top"}),
    ("workspaces.organization_settings", {"organization_id": "o-1"}),
    ("workspaces.change_invitation", {"organization_id": "o1", "invitation_id": "i1", "action": "revoke"}),
    ("workspaces.remove_member", {"organization_id": "o1", "workspace_id": "w1", "user_id": "u1"}),
    ("security.sign_out_session", {"session_id": "s_1~"}),
    ("auth_requests.choose_workspace", {"auth_request": "xyz"}),  # a query argument
    ("accounts.sign_in", {"next": "/w/abc"}),
    ("accounts.sign_in", {}),
    ("static", {"filename": "app.css"}),
]


@pytest.mark.parametrize("root", ["", "/accounts"])
def test_template_url_for_builds_what_url_for_builds(tmp_path, root):
    app = service_app("web", {"APP_ENV": "test", "VAR_DIR": str(tmp_path),
                              "WEB_DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}"})
    template_url_for = app.jinja_env.globals["url_for"]
    with app.test_request_context("/", base_url=f"http://localhost{root}"):
        for endpoint, values in CASES * 2:  # the second time from what the first remembered
            assert template_url_for(endpoint, **values) == url_for(endpoint, **values), (endpoint, values)
        assert template_url_for("workspaces.workspace", workspace_id="w1").startswith(f"{root}/w/")


class Lower(BaseConverter):
    def to_url(self, value) -> str:
        return super().to_url(str(value).lower())


def test_template_url_for_leaves_what_it_cannot_fill_in_to_url_for(tmp_path):
    """Routes whose URL is not their one rule with the values put in as they are: a converter that reads or
    changes the value, an endpoint with a rule per method (werkzeug picks by the request's method)."""
    app = service_app("web", {"APP_ENV": "test", "VAR_DIR": str(tmp_path),
                              "WEB_DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}"})
    app.url_map.converters["lower"] = Lower
    def view(**_values) -> str:
        return ""

    app.add_url_rule("/t/i/<int:n>", "t_int", view)
    app.add_url_rule("/t/l/<lower:v>", "t_lower", view)
    app.add_url_rule("/t/a/<x>", "t_method", view, methods=["GET"])
    app.add_url_rule("/t/b/<x>", "t_method", view, methods=["POST"])
    template_url_for = app.jinja_env.globals["url_for"]
    for method in ("GET", "POST", "GET"):
        with app.test_request_context("/", method=method):
            for endpoint, values in (("t_int", {"n": "5"}), ("t_lower", {"v": "ABC"}), ("t_method", {"x": "k"})):
                assert template_url_for(endpoint, **values) == url_for(endpoint, **values), (method, endpoint)
