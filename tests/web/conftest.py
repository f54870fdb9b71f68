"""The hosted pages against the real system: identity, tenancy, both relays, the notifier's consumer
and web as live servers on free loopback ports (embedded defaults: SQLite files, kombu's filesystem
bus), mail into the real SMTP sink; and one Chromium for every browser test of the run.

`WEB_SCREENSHOTS=1` also writes each page's screenshots (1280 and 375 px wide) to docs/screenshots/.
"""
from __future__ import annotations

import json
import os
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from support import ROOT
from support.databases import migrate, postgres_available
from support.ports import answers, free_port
from support.rabbitmq import RabbitVhost, rabbitmq_available
from support.smtp import SmtpSink
from tests import backends
from tests.processes import Processes, wait_for

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "correct horse battery"
READY_TIMEOUT = 60.0
#: The product apps registered at identity's OpenID Provider (OIDC_CLIENTS), with their secrets.
APPS = {"shop": "shop-secret-for-the-web-tests", "blog": "blog-secret-for-the-web-tests"}
#: A public app registered there too (a browser or native app: no secret, PKCE S256 required).
PUBLIC_APP = "notes"


class _AppPage(BaseHTTPRequestHandler):
    """A product app's redirect URI: the browser lands here with the code (the test reads the URL)."""

    def do_GET(self):
        body = b'<!doctype html><html lang="en"><title>Back in the app</title><h1>Back in the app</h1></html>'
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Stack:
    """The live servers and where they are."""

    def __init__(self, workdir: Path, sink: SmtpSink, **env: str):
        self.sink = sink
        self.ports = {name: free_port() for name in ("identity", "tenancy", "web")}
        self.web = f"http://127.0.0.1:{self.ports['web']}"
        self.identity = f"http://127.0.0.1:{self.ports['identity']}"
        self.apps = ThreadingHTTPServer(("127.0.0.1", 0), _AppPage)
        self.app_url = f"http://127.0.0.1:{self.apps.server_address[1]}"
        threading.Thread(target=self.apps.serve_forever, daemon=True).start()
        clients = {name: {"client_secret": secret, "redirect_uris": [f"{self.app_url}/{name}/cb"],
                          "name": f"The {name.title()}"} for name, secret in APPS.items()}
        clients[PUBLIC_APP] = {"token_endpoint_auth_method": "none", "name": f"The {PUBLIC_APP.title()}",
                               "redirect_uris": [f"{self.app_url}/{PUBLIC_APP}/cb"]}
        passed = ("PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV")
        env = {key: os.environ[key] for key in passed if key in os.environ}
        env.update({
            "APP_ENV": "test", "VAR_DIR": str(workdir / "var"), "PYTHONUNBUFFERED": "1", "WEB_CONCURRENCY": "1",
            "IDENTITY_PORT": str(self.ports["identity"]), "TENANCY_PORT": str(self.ports["tenancy"]),
            "WEB_PORT": str(self.ports["web"]), "IDENTITY_PUBLIC_URL": self.identity,
            "TENANCY_INTERNAL_URL": f"http://127.0.0.1:{self.ports['tenancy']}", "WEB_PUBLIC_URL": self.web,
            "SMTP_URL": sink.url, "IP_RATE_LIMIT_PER_MINUTE": "100000", "PROXY_HOPS": "1", "ACCESS_LOG": "0",
            "GUNICORN_GRACEFUL_TIMEOUT": "3", "OIDC_CLIENTS": json.dumps(clients),
            **env,
        })
        self.processes = Processes(workdir, env)

    def start(self) -> Stack:
        for module in ("identity", "tenancy", "notifier", "web"):
            migrate(f"services.{module}", self.processes.env)
        for name, args in {"identity": ("services.identity", "serve"), "tenancy": ("services.tenancy", "serve"),
                           "web": ("services.web", "serve"), "identity-relay": ("services.identity", "relay"),
                           "tenancy-relay": ("services.tenancy", "relay"),
                           "mailer": ("services.notifier", "consume")}.items():
            # Two web workers, so one browser's requests can really run at once (token refresh under a lock)
            self.processes.start(name, *args, **({"WEB_CONCURRENCY": "2"} if name == "web" else {}))
        for name, port in self.ports.items():
            wait_for(lambda port=port: answers(port), READY_TIMEOUT, f"{name} to be ready")
        return self

    def stop(self) -> None:
        self.processes.stop_all()
        self.apps.shutdown()
        self.apps.server_close()

    def link_in_mail(self, address: str, path: str, count: int = 1) -> str:
        """The link to web's `path` in the `count`-th mail to `address` that has one (its plain text part)."""
        pattern = re.compile(re.escape(self.web + path) + r"\?\S+")

        def links() -> list[str]:
            found = []
            for mail in self.sink.mail_to(address):
                found += pattern.findall(mail.message.get_body(preferencelist=("plain",)).get_content())
            return found

        try:
            self.sink.wait_until(lambda: len(links()) >= count, timeout=60,
                                 what=f"mail {count} to {address} with {path}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.mail_pipeline()}") from None
        return links()[count - 1]

    def mail_pipeline(self) -> str:
        """Whether the relay and the mailer still run, and the end of their logs (for a mail that never came)."""
        lines = []
        for name in ("identity-relay", "tenancy-relay", "mailer"):
            child = self.processes.children.get(name)
            state = "running" if child and child.poll() is None else f"exited {child and child.returncode}"
            lines.append(f"--- {name}: {state}\n" + "\n".join(self.processes.log(name).splitlines()[-15:]))
        return "\n".join(lines)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    with SmtpSink() as sink:
        running = Stack(tmp_path_factory.mktemp("web-stack"), sink)
        try:
            yield running.start()
        finally:
            running.stop()


@pytest.fixture
def postgres_stack(tmp_path, databases):
    """The same servers on PostgreSQL (every service's database, web's too) and RabbitMQ."""
    backends.require(postgres_available(), "PostgreSQL")
    backends.require(rabbitmq_available(), "RabbitMQ")
    urls = {service: databases.fresh("postgres", f"services.{service}")
            for service in ("identity", "tenancy", "notifier", "web")}
    vhost = RabbitVhost(f"threshold-web-{os.getpid()}").create()
    with SmtpSink() as sink:
        running = Stack(tmp_path, sink, BROKER_URL=vhost.url(),
                        **{f"{service.upper()}_DATABASE_URL": url for service, url in urls.items()})
        try:
            yield running.start()
        finally:
            running.stop()
            vhost.delete()
            for url in urls.values():
                databases.drop(url)


@pytest.fixture
def new_page(browser):
    """A page in a fresh browser context (its own cookies); `javascript=False` turns scripts off."""
    contexts = []

    def make(javascript: bool = True, width: int = 1280, service_workers: str = "block"):
        context = browser.new_context(java_script_enabled=javascript, viewport={"width": width, "height": 900},
                                      service_workers=service_workers)
        context.set_default_timeout(15000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def unique_address() -> str:
    return f"web-{uuid.uuid4().hex[:12]}@example.com"


def check_page(page, name: str | None = None) -> None:
    """What every page promises: lang, one h1, a title, the viewport, a label and autocomplete where
    needed; axe-core finds nothing serious or critical. With a name and WEB_SCREENSHOTS=1, screenshots."""
    from playwright.sync_api import expect

    expect(page.locator("h1")).to_have_count(1)
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang"), page.url
    assert page.title(), page.url
    assert "width=device-width" in (page.locator('meta[name="viewport"]').get_attribute("content") or "")
    for field in page.locator("input:not([type=hidden]), select, textarea").all():
        field_id = field.get_attribute("id")
        assert field_id and page.locator(f'label[for="{field_id}"]').count() == 1, (page.url, field_id)
        if field.get_attribute("type") in ("email", "password") or field.get_attribute("inputmode") == "numeric":
            assert field.get_attribute("autocomplete"), (page.url, field_id)
    page.evaluate(AXE.read_text() + "\n;0")  # run through the DevTools protocol: the page's CSP does not apply
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in results["violations"]
               if v["impact"] in ("serious", "critical")]
    assert not serious, (page.url, serious)
    original = page.viewport_size
    page.set_viewport_size({"width": 320, "height": 640})  # the narrowest phone (and 1280 px at 400 % zoom)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    page.set_viewport_size(original)
    if overflow > 0:
        page.set_viewport_size({"width": 320, "height": 640})
        wide = page.evaluate("""[...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > 321)
            .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
        page.set_viewport_size(original)
        raise AssertionError(f"{page.url}: {overflow}px wider than a 320 px screen: {wide}")
    if name and os.environ.get("WEB_SCREENSHOTS"):
        screenshot(page, name)


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size(original)
