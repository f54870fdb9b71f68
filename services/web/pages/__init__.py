"""The hosted pages, one blueprint per area, and what every page shares."""
from __future__ import annotations

from flask import Flask, redirect, render_template, request, url_for

from services.web.runtime import SignedOut
from services.web.upstream import UpstreamUnavailable


def register_pages(app: Flask) -> None:
    from services.web.pages import accounts, pwa, security, workspaces

    for module in (accounts, workspaces, security, pwa):
        app.register_blueprint(module.blp)

    @app.errorhandler(SignedOut)
    def _signed_out(_error):
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("accounts.sign_in", next=target))

    @app.errorhandler(UpstreamUnavailable)
    def _unavailable(error):
        return render_template("errors/generic.html", status=503, message=error.message), 503
