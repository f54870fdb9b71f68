"""Web's app factory: `gunicorn 'services.web.app:create_app()'`."""
from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import datetime

from babel import Locale
from flask import Flask, g, render_template, request
from flask_babel import Babel, get_locale, get_translations
from jinja2 import pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import Markup
from werkzeug.datastructures import LanguageAccept
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_accept_header
from werkzeug.middleware.proxy_fix import ProxyFix

from services.web.pages import register_pages
from services.web.runtime import EXTENSION, Runtime, ServiceToken
from services.web.sessions import ServerSessionInterface, SessionStore
from services.web.settings import Settings
from services.web.upstream import Api
from services.web.urls import template_url_for
from shared.database import make_engine, make_session_factory, ping, utcnow
from shared.service_app import SETTINGS, add_operations_routes, instrument

LANGUAGES = ("en",)
# No inline script or style anywhere: the QR code is an SVG of paths, behaviour lives in /static/app.js.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def create_app(settings: Settings | None = None, clock: Callable[[], datetime] = utcnow) -> Flask:
    settings = settings or Settings.from_env(os.environ)
    engine = make_engine(settings.database_url)
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=64 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session it is kept in
        SEND_FILE_MAX_AGE_DEFAULT=3600,
        TEMPLATES_AUTO_RELOAD=False,
    )
    if settings.proxy_hops:
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    store = SessionStore(make_session_factory(engine), secret_key=settings.secret_key, ttl=settings.session_ttl,
                         clock=clock, autocommit_engine=make_engine(settings.database_url, autocommit=True))
    app.session_interface = ServerSessionInterface(store, settings.secure_cookies)
    timeout = settings.upstream_timeout
    identity = Api(settings.identity_url, timeout)
    app.extensions[EXTENSION] = Runtime(
        settings=settings,
        identity=identity,
        tenancy=Api(settings.tenancy_url, timeout),
        store=store,
        clock=clock,
        service_token=ServiceToken(identity, settings.client_id, settings.client_secret),
    )
    Babel(app, locale_selector=lambda: _locale(request.environ.get("HTTP_ACCEPT_LANGUAGE", "")))
    # flask-babel's template callables, finding the request's translations once instead of once per string
    # (a page shows a dozen or more, at about 25 microseconds each).
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n),
    )
    app.jinja_env.globals.update({"_": _template_gettext, "gettext": _template_gettext})
    app.jinja_env.globals.update(url_for=template_url_for(app), get_locale=get_locale,
                                 product_name=settings.product_name,
                                 password_min_length=settings.password_min_length, providers=settings.providers)
    app.extensions[SETTINGS] = settings  # gunicorn's workers configure logging from them
    instrument(app, "web")
    add_operations_routes(app, {"database": lambda: ping(engine)})
    register_pages(app)

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        status = error.code or 500
        template = {403: "errors/403.html", 404: "errors/404.html"}.get(status, "errors/generic.html")
        return render_template(template, status=status), status

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        app.logger.exception("unexpected error")
        try:
            return render_template("errors/generic.html", status=500), 500
        except Exception:  # noqa: BLE001 - the error page itself failed: plain words, never a stack trace
            return "Something went wrong. Try again in a moment.", 500, {"Content-Type": "text/plain; charset=utf-8"}

    return app


@functools.lru_cache(maxsize=256)
def _locale(accept_language: str) -> Locale:
    """The locale for an Accept-Language header: a function of the header alone, so each header's answer is
    worked out once (parsing the header and the locale cost about 40 microseconds a page)."""
    accepted = parse_accept_header(accept_language, LanguageAccept)
    return Locale.parse(accepted.best_match(LANGUAGES, default=LANGUAGES[0]))


@pass_eval_context
def _template_gettext(eval_context: EvalContext, string: str, **variables) -> str:
    """The templates' `_` and `gettext`: what Jinja's i18n extension installs for newstyle gettext (marked
    safe under autoescape, then always %-formatted with the keyword arguments, escaped), without its two
    indirections through the template context per string. `%` with no variables and no `%` in the string
    changes nothing, so that formatting is skipped."""
    translated = _translations().ugettext(string)
    if eval_context.autoescape:
        translated = Markup(translated)
    return translated % variables if variables or "%" in translated else translated


def _translations():
    """The request's translations (flask-babel's), looked up once per request."""
    translations = g.get("translations")
    if translations is None:
        translations = g.translations = get_translations()
    return translations
