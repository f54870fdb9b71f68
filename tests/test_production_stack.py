"""Production, natively: the commands the compose services run (the migrations, gunicorn with
deploy/gunicorn.conf.py for each HTTP service, both relays, the consumer, and nginx with
deploy/nginx/nginx.conf in front, through which every request goes), with APP_ENV=production and
real secrets, against the real PostgreSQL and RabbitMQ (quorum queues) on loopback and an SMTP server.
A person signs up, verifies from the mail, signs in, creates an organization and sees its members;
then invites a second person, whose invitation arrives by mail, who accepts it and sees that
workspace, and not the organization's other one."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid

import pytest
import requests
from cryptography.fernet import Fernet

from support import ROOT
from support.databases import postgres_available
from support.ports import answers, free_port
from support.smtp import SmtpSink
from tests import backends, nginx
from tests.processes import Processes, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]
PASSWORD = "a long production passphrase"


@pytest.fixture
def empty_databases():
    """Empty PostgreSQL databases: the migrations are part of what runs."""
    backends.require(postgres_available(), "PostgreSQL")
    names = {service: f"thr_prod_{service}_{os.getpid()}" for service in ("identity", "tenancy", "notifier")}
    for name in names.values():
        backends._admin_execute(f"DROP DATABASE IF EXISTS {name}")
        backends._admin_execute(f"CREATE DATABASE {name}")
    yield {service: backends._pg_url(name) for service, name in names.items()}
    for name in names.values():
        backends._admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def stack(empty_databases, rabbit_vhost, tmp_path):
    """Migrated and running as compose runs it; yields (nginx's urls, SMTP sink, processes)."""
    ports = {name: free_port() for name in ("identity", "tenancy", "notifier")}
    public = {name: free_port() for name in nginx.SERVICES}  # what compose publishes: nginx's
    with SmtpSink() as sink:
        env = production_env(empty_databases, rabbit_vhost.url(), sink.url, ports, public["identity"], tmp_path)
        processes = start_stack(env, tmp_path)
        try:
            wait_ready(ports)
            with nginx.Nginx(tmp_path, public, {name: f"127.0.0.1:{port}" for name, port in ports.items()}):
                yield {name: f"http://127.0.0.1:{port}" for name, port in public.items()}, sink, processes
        finally:
            processes.stop_all()


def production_env(databases: dict, broker_url: str, smtp_url: str, ports: dict, public_port: int, tmp_path) -> dict:
    client_secret = "tenancy-" + uuid.uuid4().hex + uuid.uuid4().hex
    return {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "PYTHONUNBUFFERED": "1",
        "APP_ENV": "production",
        "SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
        "TOTP_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SERVICE_CLIENTS": json.dumps({"tenancy": {"secret": client_secret, "scopes": ["accounts:read"]}}),
        "TENANCY_CLIENT_SECRET": client_secret,
        "IDENTITY_DATABASE_URL": databases["identity"],
        "TENANCY_DATABASE_URL": databases["tenancy"],
        "NOTIFIER_DATABASE_URL": databases["notifier"],
        "BROKER_URL": broker_url, "BUS_QUEUE_TYPE": "quorum",
        "SMTP_URL": smtp_url,
        "IDENTITY_PORT": str(ports["identity"]), "TENANCY_PORT": str(ports["tenancy"]),
        "NOTIFIER_PORT": str(ports["notifier"]),
        "IDENTITY_PUBLIC_URL": f"http://127.0.0.1:{public_port}",  # through nginx, as clients see it
        "IDENTITY_INTERNAL_URL": f"http://127.0.0.1:{ports['identity']}",  # tenancy calls identity directly
        "PROXY_HOPS": "1",  # nginx
        "INVITATION_ACCEPT_URL": "https://app.example.com/invitations/accept",  # required in production
        "PASSWORD_MIN_LENGTH": "8", "LOG_FORMAT": "json", "WEB_CONCURRENCY": "2",
        "VAR_DIR": str(tmp_path / "var"),
    }


def test_production_stack_walks_sign_up_to_organization(stack):
    walk(*stack)


def start_stack(env: dict, tmp_path) -> Processes:
    """The compose services' commands: the migrations, then three gunicorn servers, the consumer, both relays."""
    migrate = subprocess.run(["sh", "-c", "python -m services.identity migrate && python -m services.tenancy migrate"
                              " && python -m services.notifier migrate"], cwd=ROOT, timeout=180,
                             env={**env, "PATH": f"{os.path.dirname(sys.executable)}:{env['PATH']}"},
                             capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    processes = Processes(tmp_path, env)
    for service in ("identity", "tenancy", "notifier"):
        metrics_dir = tmp_path / "metrics" / service
        metrics_dir.mkdir(parents=True)
        processes.start(service, f"services.{service}", "serve", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    processes.start("consumer", "services.notifier", "consume",
                    PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics" / "notifier"))
    processes.start("identity-relay", "services.identity", "relay")
    processes.start("tenancy-relay", "services.tenancy", "relay")
    return processes


def wait_ready(ports: dict) -> dict:
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}

    wait_for(lambda: all(answers(port, timeout=5) for port in ports.values()), timeout=90,
             what="every service to be ready")
    return urls


def sign_up_verify_sign_in(urls: dict, sink: SmtpSink, address: str, request_id: str) -> dict:
    """Through the mail, as a person would; returns the bearer header."""
    signed_up = requests.post(f"{urls['identity']}/v1/accounts", timeout=10, headers={"X-Request-ID": request_id},
                              json={"email": address, "password": PASSWORD, "first_name": "Prod", "last_name": "User"})
    assert signed_up.status_code == 201, signed_up.text
    assert signed_up.headers["X-Request-ID"] == request_id

    mail = sink.wait_for_mail(address, timeout=60)
    link = re.search(r"(http://\S+/verify-email\?token=[\w-]+)", mail.message.get_body(("plain",)).get_content())
    assert link, "no verification link in the mail"
    page = requests.get(link.group(1), timeout=10)
    assert page.status_code == 200
    token = re.search(r'name="token" value="([^"]+)"', page.text)  # opening the link verifies nothing:
    assert token, page.text  # the page's button POSTs the token
    pressed = requests.post(f"{urls['identity']}/verify-email", data={"token": token.group(1)}, timeout=10)
    assert pressed.status_code == 200, pressed.text

    tokens = requests.post(f"{urls['identity']}/v1/sessions", json={"email": address, "password": PASSWORD},
                           timeout=10)
    assert tokens.status_code == 200, tokens.text
    return {"Authorization": f"Bearer {tokens.json()['access_token']}"}


def walk(urls: dict, sink: SmtpSink, processes: Processes) -> None:
    address = f"prod-{uuid.uuid4().hex[:8]}@example.com"
    request_id = f"walk-{uuid.uuid4().hex[:12]}"
    bearer = sign_up_verify_sign_in(urls, sink, address, request_id)

    created = requests.post(f"{urls['tenancy']}/v1/organizations", json={"name": "Production Co"}, headers=bearer,
                            timeout=10)
    assert created.status_code == 201, created.text
    workspace_id = created.json()["workspace"]["id"]
    members = requests.get(f"{urls['tenancy']}/v1/workspaces/{workspace_id}/members", headers=bearer, timeout=10)
    assert members.status_code == 200, members.text
    assert [(m["email"], m["role"]) for m in members.json()["items"]] == [(address, "owner")]

    # Production logs are JSON lines, and the sign-up's request id reaches the notifier through the event.
    wait_for(lambda: request_id in processes.log("consumer"), timeout=20, what="the consumer to log the mail")
    consumer_lines = [json.loads(line) for line in processes.log("consumer").splitlines() if line.startswith("{")]
    assert any(line.get("request_id") == request_id and line.get("event") == "mail_delivered"
               for line in consumer_lines)
    assert PASSWORD not in processes.log("identity")
    metrics = requests.get(f"{urls['notifier']}/metrics", timeout=10).text
    assert 'threshold_notifier_mail_delivered_total{template="verification"} 1.0' in metrics


def test_an_invitation_travels_by_mail_and_opens_one_workspace_only(stack):
    urls, sink, _processes = stack
    owner = sign_up_verify_sign_in(urls, sink, f"owner-{uuid.uuid4().hex[:8]}@example.com", "invite-1")
    guest_address = f"guest-{uuid.uuid4().hex[:8]}@example.com"
    guest = sign_up_verify_sign_in(urls, sink, guest_address, "invite-2")

    created = requests.post(f"{urls['tenancy']}/v1/organizations", json={"name": "Inviting Co"},
                            headers=owner, timeout=10).json()
    shared_id = created["workspace"]["id"]
    private = requests.post(f"{urls['tenancy']}/v1/organizations/{created['organization']['id']}/workspaces",
                            json={"name": "Private"}, headers=owner, timeout=10)
    assert private.status_code == 201, private.text
    invited = requests.post(f"{urls['tenancy']}/v1/workspaces/{shared_id}/invitations",
                            json={"email": guest_address, "role": "member"}, headers=owner, timeout=10)
    assert invited.status_code == 201, invited.text

    mail = sink.wait_for_mail(guest_address, count=2, timeout=60)  # verification, then the invitation
    text = mail.message.get_body(("plain",)).get_content()
    accept = re.search(r"invitation=([\w-]+)&token=([\w-]+)", text)
    assert accept, text
    assert mail.message["Subject"] == "Prod User invited you to My Workspace"
    invitation_id, token = accept.groups()
    accepted = requests.post(f"{urls['tenancy']}/v1/invitations/{invitation_id}/accept", json={"token": token},
                             headers=guest, timeout=10)
    assert accepted.status_code == 200, accepted.text

    visible = requests.get(f"{urls['tenancy']}/v1/workspaces", headers=guest, timeout=10).json()["items"]
    assert [(w["id"], w["role"]) for w in visible] == [(shared_id, "member")]
    hidden = requests.get(f"{urls['tenancy']}/v1/workspaces/{private.json()['id']}", headers=guest, timeout=10)
    assert hidden.status_code == 404
