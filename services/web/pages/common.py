"""Helpers the pages share: rendering a form with its errors, upstream errors as form errors, `next`."""
from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from services.web.runtime import signed_in
from services.web.upstream import UpstreamError

CSRF_MESSAGE = "The form expired. Check it and send it again."


def safe_next(value: str | None) -> str | None:
    """A `next` target only if it is a path on this site (never another origin, never `//host`)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in value):
        return None
    return value


def page(template: str, form: FlaskForm | None = None, status: int | None = None, **context):
    """Render a page; a form that failed answers 400 (its CSRF token) or 422 (its fields)."""
    if status is None:
        status = 200
        if form is not None and form.errors:
            status = 400 if "csrf_token" in form.errors else 422
    return render_template(template, form=form, **context), status


def checked(form: FlaskForm) -> bool:
    """`validate_on_submit`, with a failed CSRF check worded for people and password fields emptied."""
    if not form.is_submitted():
        return False
    if form.validate():
        return True
    if "csrf_token" in form.errors:
        form.csrf_token.errors = [_(CSRF_MESSAGE)]
    for field in form:
        if field.type == "PasswordField":
            field.data = ""
    return False


def add_upstream_errors(form: FlaskForm, error: UpstreamError) -> None:
    """The per-field messages of a 422 onto the form's fields; anything else to the form as a whole."""
    placed = False
    for name, messages in (error.errors or {}).items():
        if name in form._fields:
            form[name].errors = list(form[name].errors) + [str(m) for m in messages]
            placed = True
    if not placed:
        form.form_errors.append(error.detail or _("Something went wrong. Try again."))
    for field in form:
        if field.type == "PasswordField":
            field.data = ""


def retry_message(error: UpstreamError) -> str:
    seconds = error.retry_after or 60
    return _("Too many attempts. Try again in %(seconds)s seconds.", seconds=seconds)


def require_sign_in(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not signed_in():
            return redirect(url_for("accounts.sign_in", next=safe_next(request.full_path.rstrip("?"))))
        return view(*args, **kwargs)

    return wrapper
