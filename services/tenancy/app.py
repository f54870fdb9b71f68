"""Tenancy's app factory: `gunicorn 'services.tenancy.app:create_app()'`."""
from __future__ import annotations

import os

from flask import Flask

from services.tenancy.settings import Settings
from shared import auth, bus
from shared.database import make_engine, ping
from shared.errors import ErrorMap
from shared.jwt import JwksClient, TokenRejected, Verifier
from shared.service_app import broker_check, build_app

DESCRIPTION = "Organizations, workspaces, memberships and invitations."


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env(os.environ)
    engine = make_engine(settings.database_url)
    app, _api = build_app("tenancy", "Threshold tenancy", DESCRIPTION, ErrorMap({TokenRejected: 401}), readiness={
        "database": lambda: ping(engine),
        "bus": broker_check(lambda: bus.connect(settings.broker_url, settings.var_dir)),
    })
    jwks = JwksClient(f"{settings.identity_url}/.well-known/jwks.json")
    app.extensions[auth.EXTENSION] = Verifier(jwks.get, settings.issuer, settings.audience)
    return app
