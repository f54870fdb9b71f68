"""The login UI of identity's OpenID Provider (docs/oidc-provider.md, "The login UI").

Identity sends a product app's browser to `/sign-in?auth_request=<id>`. Web reads the request with its
service token, signs the person in if needed (the sign-in page, its second factor, a provider, sign-up and
the first organization: the request travels as `next`), has them choose a workspace when the app asks
for one, and completes it with the person's access token; identity answers where the browser goes (the
app's redirect URI with the code). A browser already signed in is sent back at once: single sign-on.
"""
from __future__ import annotations

import re

from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l

from services.web import forms
from services.web.pages.common import checked, page
from services.web.pages.workspaces import my_workspaces
from services.web.runtime import access_token, identity_as_service, signed_in
from services.web.upstream import UpstreamError

blp = Blueprint("auth_requests", __name__)

REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: Set by a sign-in made for this request: `password_required` is then met.
FRESH = "fresh_for"


class Ended(Exception):
    """The request cannot go on (expired, already completed, unknown): a page that says so."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def _path(request_id: str, action: str = "") -> str:
    if not REQUEST_ID.fullmatch(request_id or ""):
        raise Ended("not_found")
    return f"/internal/v1/auth-requests/{request_id}{action}"


def _identity(method: str, request_id: str, action: str = "", **kwargs) -> dict:
    try:
        return identity_as_service(method, _path(request_id, action), **kwargs)
    except UpstreamError as error:
        if error.code in ("auth_request_expired", "auth_request_completed", "not_found"):
            raise Ended(error.code) from None
        raise


def _to_client(answer: dict):
    session.pop("next", None)
    session.pop(FRESH, None)
    return redirect(answer["redirect_to"], 303)


def _refuse(request_id: str, error: str):
    return _to_client(_identity("POST", request_id, "/refuse", json={"error": error}))


def _return_path(request_id: str) -> str:
    return url_for("accounts.sign_in", auth_request=request_id)


def resume(request_id: str) -> tuple:
    """`GET /sign-in?auth_request=…`: (the response that finishes the request, or None to show the sign-in
    form; the request as identity describes it).

    Whatever happens next (sign-up, second factor, provider, first organization) comes back here
    through `next`."""
    described = _identity("GET", request_id)
    session["next"] = _return_path(request_id)
    silent = "none" in described["prompt"]
    fresh = session.get(FRESH) == request_id
    if not signed_in() or (described["password_required"] and not fresh):
        return (_refuse(request_id, "login_required") if silent else None), described
    return _finish(request_id, described, silent), described


def _finish(request_id: str, described: dict, silent: bool):
    """Signed in: complete the request, or what must come first (first organization, workspace choice)."""
    workspaces = my_workspaces()
    if not workspaces and not silent:
        return redirect(url_for("workspaces.new_organization"))
    workspace = None
    if described["workspace_required"]:
        workspace = _chosen(workspaces, described["workspace_hint"])
        if workspace is None:
            return _refuse(request_id, "interaction_required") if silent else \
                redirect(url_for("auth_requests.choose_workspace", auth_request=request_id))
    try:
        return _complete(request_id, workspace)
    except UpstreamError as error:
        if error.code not in ("login_required", "person_token_invalid"):
            raise
        return _refuse(request_id, "login_required") if silent else None


def _chosen(workspaces: list[dict], hint: str | None) -> dict | None:
    """The workspace the person need not pick: the hinted one they may open, or their only one."""
    hinted = [w for w in workspaces if w["id"] == hint]
    if hinted:
        return hinted[0]
    return workspaces[0] if len(workspaces) == 1 else None


def _complete(request_id: str, workspace: dict | None):
    body: dict[str, object] = {"access_token": access_token()}
    if workspace is not None:
        body["workspace"] = {"workspace_id": workspace["id"], "organization_id": workspace["organization_id"],
                             "workspace_role": workspace["role"]}
    return _to_client(_identity("POST", request_id, "/complete", json=body))


def _pending_request() -> str | None:
    """The authorization request `next` leads back to, if any."""
    prefix = url_for("accounts.sign_in") + "?auth_request="
    target = session.get("next") or ""
    return target[len(prefix):] if target.startswith(prefix) else None


def signed_in_for_request() -> None:
    """After any sign-in: if it was made for an authorization request, that request's fresh sign-in is done."""
    request_id = _pending_request()
    if request_id:
        session[FRESH] = request_id


@blp.route("/sign-in/workspace", methods=["GET", "POST"])
def choose_workspace():
    """"Choose a workspace": the app asked for one and the person has several."""
    request_id = request.args.get("auth_request", "")
    if not signed_in():
        return redirect(_return_path(request_id) if REQUEST_ID.fullmatch(request_id) else url_for("accounts.sign_in"))
    described = _identity("GET", request_id)
    if not described["workspace_required"]:
        abort(404)
    workspaces = my_workspaces()
    form = forms.ChooseWorkspaceForm()
    form.workspace.choices = [(w["id"], w["name"]) for w in workspaces]
    if checked(form):
        try:
            return _complete(request_id, next(w for w in workspaces if w["id"] == form.workspace.data))
        except UpstreamError as error:
            if error.code not in ("login_required", "person_token_invalid"):
                raise
            return redirect(_return_path(request_id))
    # Each workspace's organization, named only when they are in more than one
    organizations = {w["id"]: (w.get("organization") or {}).get("name") for w in workspaces}
    if len({w["organization_id"] for w in workspaces}) < 2:
        organizations = {}
    return page("accounts/choose_workspace.html", form, client_name=described["client_name"],
                organizations=organizations)


MESSAGES = {
    "auth_request_expired": _l("This sign-in took too long. Go back to the application and sign in again."),
    "auth_request_completed": _l("This sign-in is already finished. Go back to the application to start again."),
    "not_found": _l("This sign-in link is not valid. Go back to the application and sign in again."),
}


def ended_page(error: Ended):
    if _pending_request():
        session.pop("next", None)
    status = {"not_found": 404, "auth_request_completed": 409}.get(error.code, 400)
    return render_template("accounts/auth_request_ended.html", message=MESSAGES[error.code]), status
