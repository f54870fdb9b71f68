"""Sign up, check your email, verify, sign in (and its second factor), sign out, forgot and reset password."""
from __future__ import annotations

import time
from urllib.parse import urlencode

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from services.web import forms
from services.web.pages import auth_requests
from services.web.pages.common import (
    CSRF_MESSAGE,
    add_upstream_errors,
    checked,
    page,
    retry_message,
    safe_next,
)
from services.web.runtime import identity, runtime, signed_in
from services.web.runtime import sign_in as keep_tokens
from services.web.runtime import sign_out as end_session
from services.web.upstream import UpstreamError

blp = Blueprint("accounts", __name__)


def _remember_next() -> None:
    target = safe_next(request.args.get("next"))
    if target:
        session["next"] = target


def _after_sign_in():
    return redirect(session.pop("next", None) or url_for("workspaces.home"))


def _signed_in(tokens: dict):
    """A sign-in just happened (password, second factor or provider): keep it and go on."""
    keep_tokens(tokens)
    auth_requests.signed_in_for_request()
    return _after_sign_in()


@blp.route("/sign-up", methods=["GET", "POST"])
def sign_up():
    if signed_in():
        return redirect(url_for("workspaces.home"))
    _remember_next()
    form = forms.SignUpForm()
    if checked(form):
        email = form.email.data.strip()
        try:
            identity("POST", "/v1/accounts", json={"email": email, "password": form.password.data,
                                                    "first_name": form.first_name.data.strip(),
                                                    "last_name": form.last_name.data.strip()})
        except UpstreamError as error:
            if error.status == 429:
                form.form_errors.append(retry_message(error))
                return page("accounts/sign_up.html", form, 429)
            if error.code != "email_taken":
                add_upstream_errors(form, error)
                return page("accounts/sign_up.html", form)
            # The same answer as for a new address; an unverified owner gets a fresh link.
            identity("POST", "/v1/email-verifications", json={"email": email})
        session["pending_email"] = email
        session["mail_sent_at"] = time.time()
        return redirect(url_for(".check_email"))
    return page("accounts/sign_up.html", form)


def _cooldown_left() -> int:
    sent = session.get("mail_sent_at", 0)
    return max(0, int(sent + runtime().settings.resend_cooldown - time.time() + 0.999))


@blp.route("/check-email", methods=["GET", "POST"])
def check_email():
    email = session.get("pending_email")
    if not email:
        return redirect(url_for(".sign_up"))
    form = forms.ButtonForm()
    if checked(form):
        left = _cooldown_left()
        if left:
            flash(_("Wait %(seconds)s seconds before asking for another link.", seconds=left))
        else:
            try:
                identity("POST", "/v1/email-verifications", json={"email": email})
            except UpstreamError as error:
                flash(retry_message(error))
                return redirect(url_for(".check_email"))
            session["mail_sent_at"] = time.time()
            flash(_("We sent another link to %(email)s.", email=email))
        return redirect(url_for(".check_email"))
    return page("accounts/check_email.html", form, email=email, cooldown=_cooldown_left())


@blp.route("/verify-email", methods=["GET", "POST"])
def verify_email():
    """Opening the mail's link shows a button; only pressing it (a POST) confirms the address."""
    form = forms.TokenForm(token=request.args.get("token", "")[:512])
    resend = forms.EmailForm(prefix="resend")
    if checked(form):
        try:
            identity("POST", "/v1/email-verifications/confirm", json={"token": form.token.data})
        except UpstreamError as error:
            if error.status == 429:
                form.form_errors.append(retry_message(error))
                return page("accounts/verify_email.html", form, 429, resend=resend)
            form.form_errors.append(_("This link has expired or was already used. Ask for a new one below.")
                                    if error.code == "token_expired" else
                                    _("This link is not valid any more. Ask for a new one below."))
            return page("accounts/verify_email.html", form, 400, resend=resend, failed=True)
        return redirect(url_for(".email_verified"))
    return page("accounts/verify_email.html", form, resend=resend)


@blp.post("/verify-email/resend")
def resend_verification():
    form = forms.EmailForm(prefix="resend")
    if not checked(form):
        return page("accounts/verify_email.html", form, resend=form, failed=True)
    identity("POST", "/v1/email-verifications", json={"email": form.email.data.strip()})
    session["pending_email"] = form.email.data.strip()
    session["mail_sent_at"] = time.time()
    return redirect(url_for(".check_email"))


@blp.get("/email-verified")
def email_verified():
    return page("accounts/email_verified.html", next=session.get("next"))


@blp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    email = request.args.get("login_hint", "")[:254] or None
    request_id = request.args.get("auth_request")
    if request_id is not None:  # an application's sign-in request: signed in or not, a POST checks the password
        if request.method == "GET":
            finished, described = auth_requests.resume(request_id)
            if finished is not None:
                return finished
            email = described["login_hint"] or session.get("account", {}).get("email")
            g.client_name = described["client_name"]
    else:
        _remember_next()
        if signed_in():
            return _after_sign_in()
    form = forms.SignInForm(email=email)
    if not checked(form):
        return page("accounts/sign_in.html", form)
    try:
        answer = identity("POST", "/v1/sessions", json={"email": form.email.data.strip(),
                                                        "password": form.password.data})
    except UpstreamError as error:
        form.password.data = ""
        if error.status == 429:
            form.form_errors.append(retry_message(error))
            return page("accounts/sign_in.html", form, 429)
        if error.code == "email_not_verified":
            session["pending_email"] = form.email.data.strip()
            form.form_errors.append(_("Verify your email address first: open the link we sent you."))
            return page("accounts/sign_in.html", form, 403, unverified=True)
        if error.status == 422:
            add_upstream_errors(form, error)
        else:
            form.form_errors.append(_("The email or password is incorrect."))
        return page("accounts/sign_in.html", form, 401 if error.status == 401 else None)
    if answer.get("mfa_required"):
        session["mfa"] = answer["mfa_token"]
        return redirect(url_for(".second_factor"))
    return _signed_in(answer)


@blp.get("/sign-in/with/<provider>")
def federated_start(provider: str):
    """To identity's OIDC start, which comes back to /sign-in/federated with `#login_code=…`."""
    settings = runtime().settings
    if provider not in dict(settings.providers):
        abort(404)
    return_to = settings.public_url + url_for(".federated_finish")
    query = urlencode({"return_to": return_to})
    return redirect(f"{settings.identity_public_url}/v1/oidc/{provider}/authorize?{query}")


@blp.route("/sign-in/federated", methods=["GET", "POST"])
def federated_finish():
    """The login code arrives in the URL's fragment, which only the browser sees: app.js posts it here."""
    form = forms.LoginCodeForm()
    if not checked(form):
        return page("accounts/federated.html", form)
    try:
        tokens = identity("POST", "/v1/sessions/oidc", json={"login_code": form.login_code.data})
    except UpstreamError:
        form.form_errors.append(_("Signing in with the provider did not work. Try again."))
        return page("accounts/federated.html", form, 400)
    return _signed_in(tokens)


def _second_factor(form, template: str):
    if "mfa" not in session:
        return redirect(url_for(".sign_in"))
    if not checked(form):
        return page(template, form)
    try:
        tokens = identity("POST", "/v1/sessions/mfa", json={"mfa_token": session["mfa"],
                                                             "code": form.code.data.strip().replace(" ", "")})
    except UpstreamError as error:
        if error.status == 429:
            form.form_errors.append(retry_message(error))
            return page(template, form, 429)
        if error.code == "invalid_code":
            form.code.errors = [_("That code is not right. Try the newest code.")]
            return page(template, form, 401)
        session.pop("mfa", None)
        flash(_("Your sign-in took too long or had too many wrong codes. Sign in again."))
        return redirect(url_for(".sign_in"))
    return _signed_in(tokens)


@blp.route("/sign-in/code", methods=["GET", "POST"])
def second_factor():
    return _second_factor(forms.CodeForm(), "accounts/second_factor.html")


@blp.route("/sign-in/recovery-code", methods=["GET", "POST"])
def recovery_code():
    return _second_factor(forms.RecoveryCodeForm(), "accounts/recovery_code.html")


@blp.post("/sign-out")
def sign_out():
    form = forms.ButtonForm()
    if not checked(form):
        return render_template("errors/generic.html", status=400, message=_(CSRF_MESSAGE)), 400
    end_session()
    flash(_("You are signed out."))
    return redirect(url_for(".sign_in"))


@blp.route("/forgot-password", methods=["GET", "POST"])
def forgot_password():
    form = forms.EmailForm()
    if checked(form):
        try:
            identity("POST", "/v1/password-resets", json={"email": form.email.data.strip()})
        except UpstreamError as error:
            form.form_errors.append(retry_message(error) if error.status == 429 else error.detail)
            return page("accounts/forgot_password.html", form, error.status if error.status == 429 else 422)
        flash(_("If an account uses %(email)s, we sent it a link to set a new password.",
                email=form.email.data.strip()))
        return redirect(url_for(".forgot_password"))
    return page("accounts/forgot_password.html", form)


@blp.route("/reset-password", methods=["GET", "POST"])
def reset_password():
    form = forms.NewPasswordForm(token=request.args.get("token", "")[:512])
    if checked(form):
        try:
            identity("POST", "/v1/password-resets/confirm", json={"token": form.token.data,
                                                                   "new_password": form.new_password.data})
        except UpstreamError as error:
            if error.status == 429:
                form.form_errors.append(retry_message(error))
                return page("accounts/reset_password.html", form, 429)
            if error.code in ("token_invalid", "token_expired"):
                form.form_errors.append(_("This link has expired or was already used. Ask for a new one."))
                return page("accounts/reset_password.html", form, 400, expired=True)
            add_upstream_errors(form, error)
            return page("accounts/reset_password.html", form)
        flash(_("Your password is set. Sign in with it."))
        return redirect(url_for(".sign_in"))
    return page("accounts/reset_password.html", form)
