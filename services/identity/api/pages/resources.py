"""The small HTML pages that mail links open.

Opening a link changes nothing: mail scanners and link previews open links before people do, so each
page shows a form and only its POST acts. The pages keep no session and set no cookie; the token in
the form is the whole proof, so a forged cross-site POST could only do what its sender, holding the
token, could do directly (docs/security.md, "HTML pages")."""
from __future__ import annotations

from flask import Blueprint, Response, render_template, request
from marshmallow import ValidationError

from services.identity import accounts
from services.identity.api.common import EmailSchema, limit_per_ip
from services.identity.errors import OneTimeTokenError
from services.identity.passwords import PasswordRejected
from services.identity.runtime import runtime
from shared.errors import RateLimited

blp = Blueprint("pages", __name__, template_folder="../../templates", static_folder="../../static",
                static_url_path="/pages-static")

MAX_TOKEN = 512
VERIFY_PAGE = "pages/verify_email.html"
RESET_PAGE = "pages/reset_password.html"

# Tokens ride in these pages' URLs, so a page loads nothing but its own stylesheet and posts only to its
# own origin. Every response also carries `Referrer-Policy: no-referrer` and `X-Frame-Options: DENY`
# (shared/service_app.py).
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                           "base-uri 'none'")


def page(template: str, status: int = 200, headers: dict | None = None, **context) -> Response:
    """An HTML page under the pages' Content-Security-Policy."""
    return Response(render_template(template, **context), status,
                    {"Content-Security-Policy": CONTENT_SECURITY_POLICY, **(headers or {})}, mimetype="text/html")


def _too_many(template: str, error: RateLimited, **context) -> Response:
    return page(template, 429, {"Retry-After": str(error.retry_after)},
                message="Too many attempts; wait a minute and try again.", **context)


def _token() -> str:
    return (request.values.get("token") or "")[:MAX_TOKEN]


@blp.route("/verify-email", methods=["GET", "POST"])
def verify_email():
    """The page the mail's VERIFY MY EMAIL button opens. Opening it only reads the link and shows whose
    address it confirms with a "Verify my email" button; the button's POST confirms the address."""
    token = _token()
    rt = runtime()
    try:
        if request.method == "GET":
            account = accounts.verification_link(rt.uow(), token=token, now=rt.clock())
            if not account["email_verified"]:
                return page(VERIFY_PAGE, title="Verify your email", account=account, token=token)
        else:
            account = accounts.confirm_email(rt.uow(), token=token, now=rt.clock())
    except OneTimeTokenError as error:
        return page(VERIFY_PAGE, 400, title="Link not valid", message=error.detail)
    return page(VERIFY_PAGE, title="Email verified", account=account, verified=True)


@blp.post("/verify-email/resend")
def resend_verification():
    """The form on a dead verification link's page: mails a new link if the address waits for one, and
    answers the same whether or not it does."""
    rt = runtime()
    try:
        limit_per_ip("email")
        email = EmailSchema().load({"email": request.form.get("email", "")})["email"]
    except RateLimited as error:
        return _too_many(VERIFY_PAGE, error, title="Link not valid")
    except ValidationError:
        return page(VERIFY_PAGE, 422, title="Link not valid", message="That is not an email address.")
    accounts.resend_verification(rt.uow(), throttle=rt.throttle, settings=rt.settings, email=email, now=rt.clock())
    return page(VERIFY_PAGE, 202, title="Check your inbox", sent=True)


@blp.route("/reset-password", methods=["GET", "POST"])
def reset_password():
    """The page the password-reset mail opens: a form that sets the new password. Opening it spends nothing."""
    token = _token()
    if request.method == "GET":
        return page(RESET_PAGE, title="Reset password", token=token)
    rt = runtime()
    try:
        limit_per_ip("reset")
        accounts.reset_password(rt.uow(), throttle=rt.throttle, settings=rt.settings, token=token,
                                new_password=request.form.get("new_password", ""), now=rt.clock())
    except (OneTimeTokenError, PasswordRejected) as error:
        return page(RESET_PAGE, 400, title="Reset password", token=token, message=error.detail)
    except RateLimited as error:
        return _too_many(RESET_PAGE, error, title="Reset password", token=token)
    return page(RESET_PAGE, title="Password changed", done=True)
