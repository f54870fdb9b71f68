"""Identity's app factory: `gunicorn 'services.identity.app:create_app()'`."""
from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from services.identity.api.accounts.resources import blp as accounts_blp
from services.identity.api.common import ERROR_MAP, policy_lengths
from services.identity.api.discovery.resources import blp as discovery_blp
from services.identity.api.internal.resources import blp as internal_blp
from services.identity.api.me.resources import blp as me_blp
from services.identity.api.mfa.resources import blp as mfa_blp
from services.identity.api.oauth.resources import blp as oauth_blp
from services.identity.api.oidc.resources import blp as oidc_blp
from services.identity.api.op.resources import blp as op_blp
from services.identity.api.pages.resources import blp as pages_blp
from services.identity.api.sessions.resources import blp as sessions_blp
from services.identity.autocommit import Reads, Rotations
from services.identity.keys import KeyStore, NoSigningKey
from services.identity.models import outbox, throttles
from services.identity.oidc import Providers
from services.identity.provider import Clients, Provider
from services.identity.runtime import EXTENSION, Runtime
from services.identity.settings import Settings
from services.identity.totp import SecretBox
from services.identity.unit_of_work import IdentityUnitOfWork
from shared import auth, bus
from shared.database import make_engine, make_session_factory, ping, utcnow
from shared.jwt import Verifier
from shared.outbox import BacklogCollector
from shared.service_app import broker_check, build_app
from shared.throttle import Throttle

DESCRIPTION = "Accounts, email verification, sessions, refresh tokens and signing keys."


def create_app(settings: Settings | None = None, clock: Callable[[], datetime] = utcnow) -> Flask:
    settings = settings or Settings.from_env(os.environ)
    engine = make_engine(settings.database_url)
    autocommit_engine = make_engine(settings.database_url, autocommit=True)
    session_factory = make_session_factory(engine)
    keys = KeyStore(lambda: IdentityUnitOfWork(session_factory), secret_key=settings.secret_key,
                    access_token_ttl=settings.access_token_ttl, reload_interval=settings.key_reload_interval,
                    clock=clock)
    keys.load()

    app, api = build_app("identity", "Threshold identity", DESCRIPTION, ERROR_MAP, readiness={
        "database": lambda: ping(engine),
        "bus": broker_check(lambda: bus.connect(settings.broker_url, settings.var_dir)),
    }, collectors=[BacklogCollector(engine, outbox, "identity")], settings=settings)
    if settings.proxy_hops:
        proxied = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops,
                           x_host=settings.proxy_hops)
        app.wsgi_app = proxied  # type: ignore[method-assign]  # Flask's documented way to wrap the WSGI app
    for client in settings.oidc_clients.values():
        if not keys.has(client.id_token_signed_response_alg):
            raise NoSigningKey(f"OIDC client {client.client_id!r} asks for {client.id_token_signed_response_alg} ID "
                               f"tokens and there is no such key: run `python -m services.identity migrate`")
    reads = Reads(autocommit_engine)
    verifier = Verifier(keys.verifying_key, settings.issuer, settings.audience, clock=clock)
    app.extensions[EXTENSION] = Runtime(
        settings=settings,
        reads=reads,
        rotations=Rotations(autocommit_engine),
        session_factory=session_factory,
        keys=keys,
        throttle=Throttle(autocommit_engine, throttles, clock),
        clock=clock,
        totp_box=SecretBox(settings.totp_keys),
        oidc=Providers(settings.oidc_providers),
        provider=Provider(clients=Clients(settings.oidc_clients, reads), keys=keys, settings=settings,
                          verify=verifier.verify),
    )
    app.extensions[auth.EXTENSION] = verifier
    app.before_request(keys.refresh)  # a rotation reaches this worker without a restart
    api.ma_plugin.converter.add_attribute_function(policy_lengths(settings))
    for blueprint in (accounts_blp, sessions_blp, me_blp, mfa_blp, oidc_blp, oauth_blp, internal_blp, discovery_blp,
                      op_blp):
        api.register_blueprint(blueprint)
    app.register_blueprint(pages_blp)
    return app
