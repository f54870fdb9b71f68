"""The small HTML pages that mail links open."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from services.identity import accounts
from services.identity.errors import OneTimeTokenError
from services.identity.passwords import PasswordRejected
from services.identity.api.common import limit_per_ip
from services.identity.runtime import runtime
from shared.errors import RateLimited

blp = Blueprint("pages", __name__, template_folder="../../templates")

MAX_TOKEN = 512


def _page(template: str, status: int = 200, **context):
    return render_template(template, **context), status


@blp.get("/verify-email")
def verify_email():
    """The page the VERIFY MY EMAIL button opens: confirms the address (idempotently) and says so."""
    token = request.args.get("token", "")[:MAX_TOKEN]
    rt = runtime()
    try:
        account = accounts.confirm_email(rt.uow(), token, rt.clock()) if token else None
    except OneTimeTokenError as error:
        return _page("pages/verify_email.html", 400, title="Link not valid", message=error.detail)
    if account is None:
        return _page("pages/verify_email.html", 400, title="Link not valid", message="The link has no token.")
    return _page("pages/verify_email.html", title="Email verified", account=account)


@blp.route("/reset-password", methods=["GET", "POST"])
def reset_password():
    """The page the password-reset mail opens: a form that sets the new password."""
    token = (request.values.get("token") or "")[:MAX_TOKEN]
    if request.method == "GET":
        return _page("pages/reset_password.html", title="Reset password", token=token)
    rt = runtime()
    try:
        limit_per_ip("reset")
        accounts.reset_password(rt.uow(), rt.throttle, rt.settings, token, request.form.get("new_password", ""),
                                rt.clock())
    except (OneTimeTokenError, PasswordRejected) as error:
        return _page("pages/reset_password.html", 400, title="Reset password", token=token, message=error.detail)
    except RateLimited as error:
        page, status = _page("pages/reset_password.html", 429, title="Reset password", token=token,
                             message="Too many attempts; wait a minute and try again.")
        return page, status, {"Retry-After": str(error.retry_after)}
    return _page("pages/reset_password.html", title="Password changed", done=True)
