"""Tenancy's app factory: `gunicorn 'services.tenancy.app:create_app()'`."""
from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime

from flask import Flask

from services.tenancy.api.common import ERROR_MAP
from services.tenancy.api.invitations.resources import blp as invitations_blp
from services.tenancy.api.organizations.resources import blp as organizations_blp
from services.tenancy.api.workspaces.resources import blp as workspaces_blp
from services.tenancy.autocommit import Reads
from services.tenancy.directory import IdentityDirectory
from services.tenancy.invitations import InvitationLimits
from services.tenancy.models import outbox, throttles
from services.tenancy.runtime import EXTENSION, Runtime
from services.tenancy.settings import Settings
from shared import auth, bus
from shared.database import make_engine, make_session_factory, ping, utcnow
from shared.jwt import JwksClient, Verifier
from shared.outbox import BacklogCollector
from shared.service_app import broker_check, build_app
from shared.throttle import Throttle

DESCRIPTION = "Organizations, workspaces, memberships and invitations."


def create_app(settings: Settings | None = None, clock: Callable[[], datetime] = utcnow) -> Flask:
    settings = settings or Settings.from_env(os.environ)
    engine = make_engine(settings.database_url)
    autocommit_engine = make_engine(settings.database_url, autocommit=True)
    app, api = build_app("tenancy", "Threshold tenancy", DESCRIPTION, ERROR_MAP, readiness={
        "database": lambda: ping(engine),
        "bus": broker_check(lambda: bus.connect(settings.broker_url, settings.var_dir)),
    }, collectors=[BacklogCollector(engine, outbox, "tenancy")], settings=settings)
    jwks = JwksClient(f"{settings.identity_url}/.well-known/jwks.json")
    app.extensions[auth.EXTENSION] = Verifier(jwks.get, settings.issuer, settings.audience, clock=clock)
    directory = IdentityDirectory(settings.identity_url, settings.client_id, settings.client_secret)
    limits = InvitationLimits(Throttle(autocommit_engine, throttles, clock), settings.invitations_per_inviter_per_hour,
                              settings.invitations_per_workspace_per_day)
    app.extensions[EXTENSION] = Runtime(
        settings=settings,
        session_factory=make_session_factory(engine),
        directory=directory,
        invitation_limits=limits,
        clock=clock,
        reads=Reads(autocommit_engine),
    )
    for blueprint in (organizations_blp, workspaces_blp, invitations_blp):
        api.register_blueprint(blueprint)
    return app
