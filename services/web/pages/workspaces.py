"""The signed-in shell: home, the first organization, workspaces, organization settings, invitations."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import generate_csrf

from services.web import forms
from services.web.pages.common import (
    add_upstream_errors,
    checked,
    page,
    require_sign_in,
)
from services.web.runtime import runtime, signed_in, tenancy, tenancy_public
from services.web.upstream import UpstreamError

blp = Blueprint("workspaces", __name__)


def my_workspaces() -> list[dict]:
    return tenancy("GET", "/v1/workspaces")["items"]


def _shell(workspaces: list[dict], current: dict | None = None) -> dict:
    """What the profile menu needs on every signed-in page. Its sign-out form is only a CSRF token (checked by
    `forms.ButtonForm` when it is sent): the token alone, without building a form around it."""
    return {"workspaces": workspaces, "current": current, "account": session.get("account", {}),
            "sign_out_token": generate_csrf()}


@blp.get("/")
def home():
    if not signed_in():
        return redirect(url_for("accounts.sign_in"))
    workspaces = my_workspaces()
    if not workspaces:
        return redirect(url_for(".new_organization"))
    return redirect(url_for(".workspace", workspace_id=workspaces[0]["id"]))


@blp.get("/w/<workspace_id>")
@require_sign_in
def workspace(workspace_id: str):
    workspaces = my_workspaces()
    current = next((w for w in workspaces if w["id"] == workspace_id), None)
    if current is None:
        abort(404)
    template = runtime().settings.product_url
    product_link = template.replace("{workspace_id}", workspace_id) if template else None
    return page("workspaces/home.html", product_link=product_link, **_shell(workspaces, current))


@blp.route("/organizations/new", methods=["GET", "POST"])
@require_sign_in
def new_organization():
    form = forms.OrganizationForm()
    if checked(form):
        try:
            created = tenancy("POST", "/v1/organizations", json={"name": form.name.data.strip()})
        except UpstreamError as error:
            add_upstream_errors(form, error)
            return page("workspaces/new_organization.html", form, **_shell(my_workspaces()))
        # `next` is where a sign-in was going (an application's sign-in request) before the first organization
        return redirect(session.pop("next", None) or url_for(".workspace", workspace_id=created["workspace"]["id"]))
    return page("workspaces/new_organization.html", form, **_shell(my_workspaces()))


def _manageable_organizations(workspaces: list[dict]) -> list[dict]:
    """The organizations of the caller's workspaces where tenancy lets them manage (owner or admin)."""
    seen, found = set(), []
    for workspace in workspaces:
        organization = workspace.get("organization") or {"id": workspace["organization_id"]}
        if organization["id"] in seen:
            continue
        seen.add(organization["id"])
        try:
            found.append(tenancy("GET", f"/v1/organizations/{organization['id']}"))
        except UpstreamError:
            continue
    return [o for o in found if o.get("role") in ("owner", "admin")]


@blp.route("/workspaces/new", methods=["GET", "POST"])
@require_sign_in
def new_workspace():
    workspaces = my_workspaces()
    organizations = _manageable_organizations(workspaces)
    if not organizations:
        return redirect(url_for(".new_organization"))
    form = forms.WorkspaceForm()
    if checked(form):
        organization_id = request.args.get("organization") or organizations[0]["id"]
        try:
            created = tenancy("POST", f"/v1/organizations/{organization_id}/workspaces",
                              json={"name": form.name.data.strip()})
        except UpstreamError as error:
            add_upstream_errors(form, error)
            return page("workspaces/new_workspace.html", form, **_shell(workspaces))
        return redirect(url_for(".workspace", workspace_id=created["id"]))
    return page("workspaces/new_workspace.html", form, **_shell(workspaces))


def _organization_or_abort(organization_id: str) -> dict:
    """The organization for its owners and admins; 403 for its other members, 404 for anyone else."""
    try:
        organization = tenancy("GET", f"/v1/organizations/{organization_id}")
    except UpstreamError as error:
        abort(403 if error.status == 403 else 404)
    if organization.get("role") not in ("owner", "admin"):
        abort(403)
    return organization


def _organization_page(organization: dict, rename=None, invite=None, status: int | None = None, summary=None):
    workspaces = tenancy("GET", f"/v1/organizations/{organization['id']}/workspaces")["items"]
    members, invitations = [], []
    for workspace in workspaces:
        for member in tenancy("GET", f"/v1/workspaces/{workspace['id']}/members")["items"]:
            members.append({**member, "workspace": workspace})
        for invitation in tenancy("GET", f"/v1/workspaces/{workspace['id']}/invitations")["items"]:
            invitations.append({**invitation, "workspace": workspace})
    rename = rename or forms.OrganizationForm(name=organization["name"], prefix="rename")
    invite = invite or forms.InvitationForm(prefix="invite")
    invite.workspace.choices = [(w["id"], w["name"]) for w in workspaces]
    form = summary or (rename if rename.errors else invite)
    return page("workspaces/organization_settings.html", form, status, organization=organization, rename=rename,
                invite=invite, members=members, invitations=invitations, org_workspaces=workspaces,
                button_form=forms.ButtonForm(), **_shell(my_workspaces()))


@blp.get("/o/<organization_id>/settings")
@require_sign_in
def organization_settings(organization_id: str):
    return _organization_page(_organization_or_abort(organization_id))


@blp.post("/o/<organization_id>/settings")
@require_sign_in
def rename_organization(organization_id: str):
    organization = _organization_or_abort(organization_id)
    form = forms.OrganizationForm(prefix="rename")
    if not checked(form):
        return _organization_page(organization, rename=form)
    try:
        tenancy("PATCH", f"/v1/organizations/{organization_id}", json={"name": form.name.data.strip()})
    except UpstreamError as error:
        add_upstream_errors(form, error)
        return _organization_page(organization, rename=form)
    flash(_("The organization is now called %(name)s.", name=form.name.data.strip()))
    return redirect(url_for(".organization_settings", organization_id=organization_id))


@blp.post("/o/<organization_id>/invitations")
@require_sign_in
def send_invitation(organization_id: str):
    organization = _organization_or_abort(organization_id)
    form = forms.InvitationForm(prefix="invite")
    workspaces = tenancy("GET", f"/v1/organizations/{organization_id}/workspaces")["items"]
    form.workspace.choices = [(w["id"], w["name"]) for w in workspaces]
    if not checked(form):
        return _organization_page(organization, invite=form)
    email = form.email.data.strip()
    try:
        tenancy("POST", f"/v1/workspaces/{form.workspace.data}/invitations", json={"email": email,
                                                                                    "role": form.role.data})
    except UpstreamError as error:
        add_upstream_errors(form, error)
        return _organization_page(organization, invite=form)
    flash(_("We sent an invitation to %(email)s.", email=email))
    return redirect(url_for(".organization_settings", organization_id=organization_id))


def _pending_invitation(organization_id: str, invitation_id: str) -> dict:
    for workspace in tenancy("GET", f"/v1/organizations/{organization_id}/workspaces")["items"]:
        for invitation in tenancy("GET", f"/v1/workspaces/{workspace['id']}/invitations")["items"]:
            if invitation["id"] == invitation_id:
                return invitation
    abort(404)


@blp.post("/o/<organization_id>/invitations/<invitation_id>/<action>")
@require_sign_in
def change_invitation(organization_id: str, invitation_id: str, action: str):
    """Revoke a pending invitation, or resend it (a new invitation, with a new link, replaces it)."""
    if action not in ("resend", "revoke"):
        abort(404)
    organization = _organization_or_abort(organization_id)
    form = forms.ButtonForm()
    if not checked(form):
        return _organization_page(organization, summary=form)
    invitation = _pending_invitation(organization_id, invitation_id)
    tenancy("DELETE", f"/v1/invitations/{invitation_id}")
    if action == "resend":
        tenancy("POST", f"/v1/workspaces/{invitation['workspace_id']}/invitations",
                json={"email": invitation["email"], "role": invitation["role"]})
        flash(_("We sent the invitation to %(email)s again.", email=invitation["email"]))
    else:
        flash(_("The invitation to %(email)s is revoked.", email=invitation["email"]))
    return redirect(url_for(".organization_settings", organization_id=organization_id))


def _invitation_preview(invitation_id: str, token: str) -> dict | None:
    """What the link invites to (tenancy checks the token without spending it); None when the link is not
    one: an unknown invitation or a wrong token. An expired one: {"state": "expired"}."""
    if not invitation_id or not token:
        return None
    try:
        return tenancy_public("POST", f"/v1/invitations/{invitation_id}/preview", json={"token": token})
    except UpstreamError as error:
        if error.code == "token_expired":
            return {"state": "expired"}
        if error.status in (404, 422):
            return None
        raise


@blp.route("/invitations/accept", methods=["GET", "POST"])
def accept_invitation():
    """The mail's link: what it invites to, from anyone holding it; signed out, ways in that come back here;
    signed in as the invitee, a button."""
    invitation_id = request.args.get("invitation", "")[:64]
    form = forms.TokenForm(token=request.args.get("token", "")[:512])
    preview = _invitation_preview(invitation_id, form.token.data)
    shell = _shell(my_workspaces()) if signed_in() else {}
    if preview is None:
        return page("workspaces/accept_invitation.html", form, 404, missing=True, **shell)
    if preview["state"] != "pending":
        return page("workspaces/accept_invitation.html", form, 410 if preview["state"] == "expired" else 409,
                    ended=preview, **shell)
    if not signed_in():
        here = url_for(".accept_invitation", invitation=invitation_id, token=form.token.data)
        return page("workspaces/accept_invitation.html", form, invitation=preview, here=here)
    if session.get("account", {}).get("email", "").lower() != preview["email"]:
        return page("workspaces/accept_invitation.html", form, 403, invitation=preview, other_account=True, **shell)
    if checked(form):
        try:
            membership = tenancy("POST", f"/v1/invitations/{invitation_id}/accept", json={"token": form.token.data})
        except UpstreamError as error:
            if error.code == "already_member":
                return redirect(url_for(".workspace", workspace_id=preview["workspace_id"]))
            form.form_errors.append(_("This invitation has expired. Ask for a new one.")
                                    if error.code == "token_expired" else
                                    _("This invitation link is not valid any more. Ask for a new one."))
            return page("workspaces/accept_invitation.html", form, 400, invitation=preview, **shell)
        return redirect(url_for(".workspace", workspace_id=membership["workspace_id"]))
    return page("workspaces/accept_invitation.html", form, invitation=preview, **shell)


def _member(organization_id: str, workspace_id: str, user_id: str) -> tuple[dict, dict]:
    """A member of one of the organization's workspaces, and that workspace; 404 for anything else."""
    for workspace in tenancy("GET", f"/v1/organizations/{organization_id}/workspaces")["items"]:
        if workspace["id"] == workspace_id:
            for member in tenancy("GET", f"/v1/workspaces/{workspace_id}/members")["items"]:
                if member["user_id"] == user_id:
                    return member, workspace
    abort(404)


@blp.post("/o/<organization_id>/members/<workspace_id>/<user_id>/role")
@require_sign_in
def change_role(organization_id: str, workspace_id: str, user_id: str):
    organization = _organization_or_abort(organization_id)
    form = forms.RoleForm()
    if not checked(form):
        return _organization_page(organization, summary=form)
    member, _workspace = _member(organization_id, workspace_id, user_id)
    try:
        tenancy("PATCH", f"/v1/workspaces/{workspace_id}/members/{user_id}", json={"role": form.role.data})
    except UpstreamError as error:
        flash(error.detail)
    else:
        flash(_("%(name)s is now %(role)s.", name=member.get("first_name") or member.get("email"), role=form.role.data))
    return redirect(url_for(".organization_settings", organization_id=organization_id))


@blp.route("/o/<organization_id>/members/<workspace_id>/<user_id>/remove", methods=["GET", "POST"])
@require_sign_in
def remove_member(organization_id: str, workspace_id: str, user_id: str):
    """A confirm page first; its button removes the member."""
    organization = _organization_or_abort(organization_id)
    form = forms.ButtonForm()
    if form.is_submitted() and not checked(form):
        return _organization_page(organization, summary=form)
    member, workspace = _member(organization_id, workspace_id, user_id)
    if form.is_submitted():
        try:
            tenancy("DELETE", f"/v1/workspaces/{workspace_id}/members/{user_id}")
        except UpstreamError as error:
            flash(error.detail)
        else:
            flash(_("%(email)s is no longer in %(workspace)s.", email=member.get("email"), workspace=workspace["name"]))
        return redirect(url_for(".organization_settings", organization_id=organization_id))
    return page("workspaces/remove_member.html", form, organization=organization, member=member,
                workspace=workspace, **_shell(my_workspaces()))
