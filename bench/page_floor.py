"""The floor under web's workspace home page: the least this stack can do to answer a signed-in page of a
backend-for-frontend over tenancy's HTTP API (informational, measured in bench/tenancy.py's rounds).

`GET /w/<workspace_id>`, a plain Flask view, as web's pages are: the browser's session row by the SHA-256
of its cookie, one SELECT on a pooled connection's DB-API cursor; tenancy's `GET /v1/workspaces` with the
session's access token, on a connection this thread keeps alive (`http.client`); the workspace found in
that list (404 if it is not there); the page rendered from one Jinja template shaped like web's (the
profile menu with each workspace, the workspace's heading and links). What it does less than web: the
session's token is stored as it is (web keeps the session's contents encrypted), no CSRF token for the
sign-out form, no translations or locale, no security headers, request id or metrics, no expiry or
refresh of the access token, no recovery from an upstream that fails.

Served like web, with `PAGE_FLOOR_DATABASE_URL` and `PAGE_FLOOR_TENANCY_URL`:
`python -m gunicorn --config deploy/gunicorn.conf.py 'bench.page_floor:create_app()'`.
"""
from __future__ import annotations

import http.client
import json
import os
import secrets
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, request
from jinja2 import Template
from sqlalchemy import Column, Engine, MetaData, String, Table

from bench.floor import cursor_of, driver_sql
from shared.database import make_engine
from shared.opaque_tokens import digest

DATABASE_VARIABLE, TENANCY_VARIABLE = "PAGE_FLOOR_DATABASE_URL", "PAGE_FLOOR_TENANCY_URL"
EXTENSION = "bench.page_floor"
COOKIE = "floor_session"

metadata = MetaData()
page_sessions = Table("page_sessions", metadata, Column("id_hash", String(64), primary_key=True),
                      Column("access_token", String(4000)))
SESSION = "SELECT access_token FROM page_sessions WHERE id_hash = %s"

PAGE = """<!doctype html>
<html lang="en" data-theme="light">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ current.name }} · Threshold</title>
<link rel="stylesheet" href="/static/vendor/pico.min.css">
<link rel="stylesheet" href="/static/app.css">
</head>
<body>
<header class="container">
<nav class="profile" aria-label="Account">
  <button type="button" class="secondary outline profile-button" aria-expanded="true"
          aria-controls="profile-menu">Profile menu</button>
  <div id="profile-menu" class="profile-menu">
    <p class="menu-heading">Workspaces</p>
    <ul>
      {% for w in workspaces %}
      <li><a href="/w/{{ w.id }}"{% if current.id == w.id %} aria-current="page"{% endif %}>{{ w.name }}
        <small>({{ w.organization.name }})</small></a></li>
      {% endfor %}
    </ul>
    <ul>
      <li><a href="/workspaces/new">Create workspace</a></li>
      <li><a href="/organizations/{{ current.organization_id }}/settings">Organization settings</a></li>
      <li><a href="/security">Security</a></li>
    </ul>
    <form method="post" action="/sign-out"><button type="submit" class="secondary">Sign out</button></form>
  </div>
</nav>
</header>
<main class="container">
<h1>{{ current.name }}</h1>
<p>Organization: {{ current.organization.name }} · Your role: {{ current.role }}</p>
<section>
  <h2>What next</h2>
  <ul>
    <li><a href="/organizations/{{ current.organization_id }}/settings">Invite people to this workspace</a></li>
    <li><a href="/security">Turn on two-factor authentication</a></li>
    <li>Your product team can link this page to the product: set PRODUCT_URL.</li>
  </ul>
</section>
</main>
</body>
</html>
"""


@dataclass(frozen=True)
class Runtime:
    """What the view uses for the life of the process, built once by `create_app`."""

    engine: Engine
    session: str  # SESSION in the driver's parameter style
    tenancy: tuple[str, int]  # host, port
    page: Template
    connections: threading.local  # each thread's kept-alive connection to tenancy


def _workspaces(runtime: Runtime, token: str) -> list[dict]:
    conn = getattr(runtime.connections, "tenancy", None)
    if conn is None:
        conn = runtime.connections.tenancy = http.client.HTTPConnection(*runtime.tenancy, timeout=10)
    try:
        conn.request("GET", "/v1/workspaces", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        conn.close()
        raise
    if response.status != 200:
        abort(502)
    return json.loads(body)["items"]


def seed(database_url: str, access_token: str) -> str:
    """The schema and one signed-in session holding `access_token`; the session cookie's value."""
    cookie = secrets.token_urlsafe(32)
    engine = make_engine(database_url)
    try:
        metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(page_sessions.insert().values(id_hash=digest(cookie), access_token=access_token))
    finally:
        engine.dispose()
    return cookie


def create_app() -> Flask:
    engine = make_engine(os.environ[DATABASE_VARIABLE], autocommit=True)
    tenancy = urlsplit(os.environ[TENANCY_VARIABLE])
    session = driver_sql(SESSION, engine.dialect)
    app = Flask("page-floor")
    app.extensions[EXTENSION] = Runtime(engine, session, (tenancy.hostname or "127.0.0.1", tenancy.port or 80),
                                        app.jinja_env.from_string(PAGE), threading.local())

    @app.get("/w/<workspace_id>")
    def workspace(workspace_id: str):
        runtime: Runtime = current_app.extensions[EXTENSION]
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            abort(401)
        with cursor_of(runtime.engine) as cursor:
            cursor.execute(runtime.session, (digest(cookie),))
            row = cursor.fetchone()
        if row is None:
            abort(401)
        workspaces = _workspaces(runtime, row[0])
        current = next((w for w in workspaces if w["id"] == workspace_id), None)
        if current is None:
            abort(404)
        return runtime.page.render(workspaces=workspaces, current=current)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app
