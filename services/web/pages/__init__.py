"""The hosted pages, one blueprint per area, and what every page shares."""
from __future__ import annotations

from flask import Flask, redirect, render_template, request, url_for

from services.web.runtime import SignedOut
from services.web.upstream import UpstreamError, UpstreamUnavailable


def register_pages(app: Flask) -> None:
    from services.web.pages import accounts, auth_requests, pwa, security, workspaces

    for module in (accounts, auth_requests, workspaces, security, pwa):
        app.register_blueprint(module.blp)

    app.register_error_handler(auth_requests.Ended, auth_requests.ended_page)

    @app.errorhandler(SignedOut)
    def _signed_out(_error):
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("accounts.sign_in", next=target))

    @app.errorhandler(UpstreamError)
    def _refused(error: UpstreamError):
        """An answer no page expected: the nearest error page, never a 500."""
        if error.status in (403, 404):
            return render_template(f"errors/{error.status}.html", status=error.status), error.status
        status = error.status if error.status in (409, 429) else 400
        return render_template("errors/generic.html", status=status, message=error.detail), status

    @app.errorhandler(UpstreamUnavailable)
    def _unavailable(error):
        return render_template("errors/generic.html", status=503, message=error.message), 503
