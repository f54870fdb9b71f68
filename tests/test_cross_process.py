"""The whole system as `make run` starts it: `python -m services.run` in a subprocess, driven over HTTP.

Sign up -> the verification mail -> its VERIFY MY EMAIL link -> sign in -> /v1/me -> an organization
in tenancy with the same token, then Ctrl-C
(SIGINT to the process group) must stop every process cleanly. Once with the embedded defaults
(SQLite files, kombu's filesystem bus, .eml files under VAR_DIR/mail) and once against real
PostgreSQL, RabbitMQ and an SMTP server (aiosmtpd). Every wait is bounded polling, and the fixture
kills whatever the run left behind, even when a test fails.
"""
from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from support import ROOT
from support.databases import postgres_available
from support.ports import answers, free_port
from support.rabbitmq import RabbitVhost, rabbitmq_available
from support.smtp import SmtpSink
from tests import backends

pytestmark = pytest.mark.slow

READY_TIMEOUT = 60.0  # migrations plus three gunicorn masters on a busy CI machine
MAIL_TIMEOUT = 60.0
# Below the supervisor's own 25 s SIGKILL deadline: a child that ignores SIGTERM fails the test.
STOP_TIMEOUT = 20.0
PASSWORD = "correct horse battery staple"
# The environment a developer's shell would pass on; nothing of Threshold's own configuration leaks in.
PASSED_ON = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "CI",
             "TEST_POSTGRES_URL", "TEST_RABBITMQ_URL")


# -- processes ----------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process from /proc, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw.rsplit(")", 1)[1].split()  # the command name may contain spaces and parentheses
    return fields[0], int(fields[1]), int(fields[19])


def descendants(root: int) -> set[tuple[int, int]]:
    """Every live process below `root`, as (pid, start time) so a reused pid is not mistaken for it."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _stat(int(entry))
            if info is not None:
                children.setdefault(info[1], []).append((int(entry), info[2]))
    found: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child[0])
    return found


def alive(process: tuple[int, int]) -> bool:
    info = _stat(process[0])
    return info is not None and info[2] == process[1] and info[0] not in ("Z", "X")  # zombies are dead


class Stack:
    """One `python -m services.run`, in its own session like a terminal's foreground job."""

    def __init__(self, workdir: Path, **env: str):
        self.workdir = workdir
        self.var_dir = workdir / "var"
        self.ports = {"identity": free_port(), "tenancy": free_port(), "notifier": free_port(), "web": free_port()}
        self.identity_url = f"http://127.0.0.1:{self.ports['identity']}"
        self.env = {key: os.environ[key] for key in PASSED_ON if key in os.environ}
        self.env.update({
            "VAR_DIR": str(self.var_dir),
            "IDENTITY_PORT": str(self.ports["identity"]),
            "TENANCY_PORT": str(self.ports["tenancy"]),
            "NOTIFIER_PORT": str(self.ports["notifier"]),
            "WEB_PORT": str(self.ports["web"]),
            "IDENTITY_PUBLIC_URL": self.identity_url,
            "PYTHONUNBUFFERED": "1",
            **env,
        })
        self.log_path = workdir / "services-run.log"
        self.process: subprocess.Popen | None = None
        self.known: set[tuple[int, int]] = set()  # every process of the run seen so far

    def start(self) -> Stack:
        with open(self.log_path, "wb") as log:  # a file, not a pipe: nothing can block on a full pipe
            self.process = subprocess.Popen([sys.executable, "-m", "services.run"], cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def log(self, last: int = 60) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        return "\n".join(lines[-last:])

    def snapshot(self) -> None:
        self.known |= descendants(self.process.pid)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        pending = dict(self.ports)
        while pending:
            assert self.process.poll() is None, f"services.run exited with {self.process.returncode}:\n{self.log()}"
            for name, port in list(pending.items()):
                if answers(port):
                    del pending[name]
            if pending:
                assert time.monotonic() < deadline, f"{sorted(pending)} not ready within {timeout}s:\n{self.log()}"
                time.sleep(0.25)
        self.snapshot()

    def interrupt(self, timeout: float = STOP_TIMEOUT) -> int:
        """Ctrl-C: SIGINT to the foreground process group; returns the exit code."""
        self.snapshot()
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"services.run still running {timeout}s after SIGINT:\n{self.log()}") from None

    def leftovers(self, grace: float = 5.0) -> list[str]:
        """Processes of the run still alive after a short bounded grace."""
        deadline = time.monotonic() + grace
        while True:
            left = [p for p in self.known if alive(p)]
            if not left or time.monotonic() > deadline:
                return [f"{pid}: {_cmdline(pid)}" for pid, _ in left]
            time.sleep(0.1)

    def kill(self) -> None:
        """Whatever is left of the run, by pid (the children sit in sessions of their own)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.snapshot()
        for pid, started in sorted(self.known | {(self.process.pid, -1)}):
            if started == -1 or alive((pid, started)):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


@pytest.fixture
def stacks(tmp_path):
    """Start `services.run` stacks; every one is killed at teardown, whatever happened."""
    started: list[Stack] = []

    def start(**env: str) -> Stack:
        stack = Stack(tmp_path / f"run{len(started)}", **env)
        stack.workdir.mkdir()
        started.append(stack)
        return stack.start()

    yield start
    for stack in started:
        stack.kill()


# -- the user's journey ---------------------------------------------------------------------------


def unique_address() -> str:
    return f"xp-{uuid.uuid4().hex[:12]}@example.com"


def wait_for_eml(mail_dir: Path, address: str,
                 timeout: float = MAIL_TIMEOUT) -> tuple[Path, email.message.EmailMessage]:
    deadline = time.monotonic() + timeout
    while True:
        for path in sorted(mail_dir.glob("*.eml")) if mail_dir.is_dir() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] == address:
                return path, message
        assert time.monotonic() < deadline, f"no mail to {address} in {mail_dir} within {timeout}s"
        time.sleep(0.2)


def check_verification_mail(message, address: str, identity_url: str) -> str:
    """The mail has a text and an HTML part, the button and the plain link; returns the link."""
    assert message["To"] == address
    assert message["Subject"] == "Verify your email address"
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None and html_part is not None, message.as_string()[:2000]
    text_body, html = text_part.get_content(), html_part.get_content()
    links = re.findall(r"https?://\S+/verify-email\?token=[A-Za-z0-9_-]+", text_body)
    assert len(links) == 1, text_body
    link = links[0]
    assert link.startswith(identity_url + "/verify-email?token=")
    assert "VERIFY MY EMAIL" in html
    assert html.count(f'href="{link}"') == 2  # the button and the plain link under it
    assert f">{link}</a>" in html
    assert re.fullmatch(r"<[A-Za-z0-9._-]+@threshold>", message["Message-ID"])
    return link


def sign_up(stack: Stack, address: str) -> dict:
    response = requests.post(f"{stack.identity_url}/v1/accounts", timeout=30, json={
        "email": address, "password": PASSWORD, "first_name": "Ada", "last_name": "Lovelace"})
    assert response.status_code == 201, response.text
    return response.json()


def verify_sign_in_me_and_organization(stack: Stack, link: str, address: str, account: dict) -> None:
    # Not signed in before the email is verified
    early = requests.post(f"{stack.identity_url}/v1/sessions", json={"email": address, "password": PASSWORD},
                          timeout=30)
    assert early.status_code == 403 and early.json()["code"] == "email_not_verified", early.text

    page = requests.get(link, timeout=30)
    assert page.status_code == 200, page.text
    assert page.headers["Content-Type"].startswith("text/html")
    # Opening the link verifies nothing (mail scanners open links); the page's button POSTs the token.
    still_early = requests.post(f"{stack.identity_url}/v1/sessions", json={"email": address, "password": PASSWORD},
                                timeout=30)
    assert still_early.status_code == 403, still_early.text
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token and "Verify my email" in page.text, page.text
    pressed = requests.post(f"{stack.identity_url}/verify-email", data={"token": token.group(1)}, timeout=30)
    assert pressed.status_code == 200 and "Your email is verified" in pressed.text, pressed.text

    session = requests.post(f"{stack.identity_url}/v1/sessions", json={"email": address, "password": PASSWORD},
                            timeout=30)
    assert session.status_code == 200, session.text
    tokens = session.json()
    assert tokens["token_type"] == "Bearer" and tokens["access_token"] and tokens["refresh_token"]

    me = requests.get(f"{stack.identity_url}/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                      timeout=30)
    assert me.status_code == 200, me.text
    assert me.json()["id"] == account["id"]
    assert me.json()["email"] == address
    assert me.json()["email_verified"] is True

    # Tenancy, another process, takes the same token (verified against identity's JWKS over HTTP)
    tenancy = f"http://127.0.0.1:{stack.ports['tenancy']}"
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    created = requests.post(f"{tenancy}/v1/organizations", json={"name": "Analytical Engines"}, headers=bearer,
                            timeout=30)
    assert created.status_code == 201, created.text
    listed = requests.get(f"{tenancy}/v1/organizations", headers=bearer, timeout=30)
    assert listed.status_code == 200, listed.text
    assert [org["name"] for org in listed.json()["items"]] == ["Analytical Engines"]


def stop_cleanly(stack: Stack) -> None:
    assert len(stack.known) >= 6, f"expected the six processes and their workers, saw {stack.known}"
    code = stack.interrupt()
    log = stack.log()
    assert code == 0, f"exit code {code}:\n{log}"
    assert "threshold: stopped" in log, log
    left = stack.leftovers()
    assert not left, f"still running after services.run exited: {left}\n{log}"
    for port in stack.ports.values():  # and nothing still listens
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


# -- tests --------------------------------------------------------------------------------------


def test_embedded_default_sign_up_mail_verify_sign_in_and_ctrl_c(stacks):
    stack = stacks()
    stack.wait_ready()

    address = unique_address()
    account = sign_up(stack, address)
    path, message = wait_for_eml(stack.var_dir / "mail", address)
    link = check_verification_mail(message, address, stack.identity_url)
    assert message["Message-ID"] == f"<{path.stem}@threshold>"  # the file is named after the event
    verify_sign_in_me_and_organization(stack, link, address, account)
    # The embedded defaults put everything under VAR_DIR
    for name in ("identity.db", "tenancy.db", "notifier.db", "bus"):
        assert (stack.var_dir / name).exists(), name

    stack.snapshot()
    stop_cleanly(stack)
    assert len(list((stack.var_dir / "mail").glob("*.eml"))) == 1


@pytest.fixture
def postgres_databases(databases):
    backends.require(postgres_available(), "PostgreSQL")
    urls = {service: databases.fresh("postgres", f"services.{service}")
            for service in ("identity", "tenancy", "notifier")}
    yield urls
    for url in urls.values():
        databases.drop(url)


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_postgres_rabbitmq_smtp_sign_up_mail_arrives_once(postgres_databases, stacks):
    backends.require(rabbitmq_available(), "RabbitMQ")
    # A virtual host of this test's own: nothing left on the shared broker can meet this run's mail.
    vhost = RabbitVhost(f"threshold-stack-{os.getpid()}").create()
    try:
        _run_against_servers(postgres_databases, stacks, vhost.url())
    finally:
        vhost.delete()


def _run_against_servers(postgres_databases, stacks, broker_url: str) -> None:
    with SmtpSink() as sink:
        stack = stacks(
            IDENTITY_DATABASE_URL=postgres_databases["identity"],
            TENANCY_DATABASE_URL=postgres_databases["tenancy"],
            NOTIFIER_DATABASE_URL=postgres_databases["notifier"],
            BROKER_URL=broker_url,
            SMTP_URL=sink.url,
        )
        stack.wait_ready()

        address = unique_address()
        account = sign_up(stack, address)
        mail = sink.wait_for_mail(address, timeout=MAIL_TIMEOUT)
        assert mail.rcpt_tos == (address,)
        link = check_verification_mail(mail.message, address, stack.identity_url)
        verify_sign_in_me_and_organization(stack, link, address, account)

        stack.snapshot()
        stop_cleanly(stack)
        # Everything has stopped: a second copy would have had to arrive by now.
        assert len(sink.mail_to(address)) == 1, sink.summary()

    event_id = re.fullmatch(r"<(.+)@threshold>", mail.message["Message-ID"]).group(1)
    engine = create_engine(postgres_databases["notifier"])
    try:
        with engine.connect() as conn:
            delivered = conn.execute(text("SELECT count(*) FROM deliveries WHERE event_id = :id"),
                                     {"id": event_id}).scalar_one()
    finally:
        engine.dispose()
    assert delivered == 1
    engine = create_engine(postgres_databases["identity"])
    try:
        with engine.connect() as conn:
            unsent = conn.execute(text("SELECT count(*) FROM outbox WHERE id = :id AND sent_at IS NULL"),
                                  {"id": event_id}).scalar_one()
    finally:
        engine.dispose()
    assert unsent == 0
    # Nothing went to files: the SMTP server was used
    assert not list((stack.var_dir / "mail").glob("*.eml"))


def test_bad_configuration_exits_2_with_one_line_naming_the_variable(tmp_path):
    env = {key: os.environ[key] for key in PASSED_ON if key in os.environ}
    env.update(VAR_DIR=str(tmp_path / "var"), BROKER_URL="bogus://x", PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "services.run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    lines = stderr.decode().strip().splitlines()
    assert process.returncode == 2, (process.returncode, stdout, stderr)
    assert len(lines) == 1, lines
    assert "BROKER_URL" in lines[0]
    assert "Traceback" not in stdout.decode()
    assert not (tmp_path / "var" / "identity.db").exists()  # nothing was started or migrated
