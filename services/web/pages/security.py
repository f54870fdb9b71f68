"""Security settings: two-factor authentication (TOTP) with recovery codes, and the signed-in sessions."""
from __future__ import annotations

import re
import time

from flask import Blueprint, Response, flash, redirect, render_template, session, url_for
from flask_babel import gettext as _
from markupsafe import Markup

from services.web import forms
from services.web.pages.common import (
    CSRF_MESSAGE,
    add_upstream_errors,
    checked,
    page,
    require_sign_in,
)
from services.web.pages.workspaces import _shell, my_workspaces
from services.web.runtime import identity_as_account, runtime
from services.web.upstream import UpstreamError

blp = Blueprint("security", __name__)

# identity's QR code is one SVG of path data; anything else is not put into the page.
QR_SVG = re.compile(r'<svg [^<>]*><path d="[MHVhvzZ0-9,. -]*"[^<>]*/></svg>')


def _qr(svg: str) -> Markup | None:
    svg = svg[svg.find("<svg"):].strip()
    if not QR_SVG.fullmatch(svg) or re.search(r"\son\w*\s*=|script|href", svg, re.IGNORECASE):
        return None
    return Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{_("QR code for your authenticator app")}" ', 1))


def _security_page(template: str, form=None, status: int | None = None, **context):
    account = identity_as_account("GET", "/v1/me")
    session["account"] = account
    return page(template, form, status, **context, **_shell(my_workspaces()))


@blp.route("/security", methods=["GET", "POST"])
@require_sign_in
def settings():
    """The password, to start enrolment (2FA off) or to turn 2FA off (on)."""
    session.pop("recovery_download", None)  # "Done": the codes page is left behind
    enabled = session.get("account", {}).get("mfa_enabled")
    form = forms.PasswordForm()
    if checked(form):
        try:
            if enabled:
                identity_as_account("POST", "/v1/me/mfa/totp/disable", json={"password": form.password.data})
                flash(_("Two-factor authentication is off."))
                return redirect(url_for(".settings"))
            session["totp"] = identity_as_account("POST", "/v1/me/mfa/totp", json={"password": form.password.data})
            return redirect(url_for(".confirm"))
        except UpstreamError as error:
            if error.code == "invalid_credentials":
                form.password.errors = [_("The password is incorrect.")]
                form.password.data = ""
            else:
                add_upstream_errors(form, error)
    return _security_page("security/settings.html", form, sessions=_sessions(), session_form=forms.ButtonForm())


# What the sessions list calls a user agent: the first of each list found in it (order matters: Edge and
# Opera also say Chrome, Chrome also says Safari; Android also says Linux).
BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
SYSTEMS = (("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Windows", "Windows"),
           ("Mac OS X", "macOS"), ("Linux", "Linux"))


def _device_name(user_agent: str | None) -> str:
    agent = user_agent or ""
    browser = next((name for mark, name in BROWSERS if mark in agent), None)
    system = next((name for mark, name in SYSTEMS if mark in agent), None)
    if browser and system:
        return _("%(browser)s on %(system)s", browser=browser, system=system)
    return browser or system or _("Unknown device")


def _sessions() -> list[dict]:
    """The account's signed-in sessions, this browser's first, each with a device name."""
    items = identity_as_account("GET", "/v1/me/sessions")["items"]
    return [{**item, "device": _device_name(item.get("user_agent"))}
            for item in sorted(items, key=lambda item: not item["current"])]


@blp.post("/security/sessions/<session_id>/sign-out")
@require_sign_in
def sign_out_session(session_id: str):
    """Sign another device out (this browser signs out from the profile menu)."""
    form = forms.ButtonForm()
    if not checked(form):
        return render_template("errors/generic.html", status=400, message=_(CSRF_MESSAGE)), 400
    try:
        identity_as_account("DELETE", f"/v1/me/sessions/{session_id[:64]}")
    except UpstreamError as error:
        if error.status != 404:
            raise
        flash(_("That session had already ended."))
    else:
        flash(_("That session is signed out."))
    return redirect(url_for(".settings"))


@blp.route("/security/two-factor", methods=["GET", "POST"])
@require_sign_in
def confirm():
    enrolment = session.get("totp")
    if not enrolment:
        return redirect(url_for(".settings"))
    form = forms.CodeForm()
    if checked(form):
        try:
            codes = identity_as_account("POST", "/v1/me/mfa/totp/confirm", json={"code": form.code.data.strip()})
        except UpstreamError as error:
            form.code.errors = [_("That code is not right. Try the newest code.")] if error.code == "invalid_code" \
                else [error.detail]
        else:
            session.pop("totp", None)
            session["recovery_codes"] = codes["recovery_codes"]
            return redirect(url_for(".recovery_codes"))
    secret = enrolment["secret"]
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return _security_page("security/confirm.html", form, qr=_qr(enrolment.get("qr_svg", "")), secret=grouped)


# How long the page's "Download" still works after the codes were shown.
DOWNLOAD_WINDOW = 600  # seconds


@blp.get("/security/recovery-codes")
@require_sign_in
def recovery_codes():
    """Shown once: the codes leave the session as this page is rendered, kept (in the encrypted server-side
    session) only for its Download button, until the security page is opened again or DOWNLOAD_WINDOW ends."""
    codes = session.pop("recovery_codes", None)
    if not codes:
        return redirect(url_for(".settings"))
    session["recovery_download"] = {"codes": codes, "until": time.time() + DOWNLOAD_WINDOW}
    return _security_page("security/recovery_codes.html", codes=codes, download_form=forms.ButtonForm())


@blp.post("/security/recovery-codes/download")
@require_sign_in
def download_recovery_codes():
    """The codes just shown, as a text file (a form POST: never in a URL, works without JavaScript)."""
    form = forms.ButtonForm()
    if not checked(form):
        return render_template("errors/generic.html", status=400, message=_(CSRF_MESSAGE)), 400
    kept = session.get("recovery_download")
    if not kept or kept["until"] < time.time():
        session.pop("recovery_download", None)
        flash(_("Recovery codes can only be downloaded from the page that shows them, just after they are made."))
        return redirect(url_for(".settings"))
    product = runtime().settings.product_name
    text = "\r\n".join([
        _("%(product)s recovery codes for %(email)s", product=product, email=session.get("account", {}).get("email")),
        _("Each code signs you in once, in place of a code from your authenticator app. Keep them safe."),
        "", *kept["codes"], ""])
    filename = re.sub(r"[^A-Za-z0-9]+", "-", product).strip("-").lower() + "-recovery-codes.txt"
    return Response(text, mimetype="text/plain",
                    headers={"Content-Disposition": f'attachment; filename="{filename or "recovery-codes.txt"}"'})
