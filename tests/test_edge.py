"""What faces clients. gunicorn's own refusals of a malformed request (before any reaches the app) are
problem+json, not HTML; and the nginx of deploy/nginx/, Debian's binary run on that very file, keeps
slow clients dripping header bytes away from identity's workers, answers its own errors as
problem+json too, and, with PROXY_HOPS as compose sets it, lets identity tell its clients apart."""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import threading
import time

import pytest
import requests

from shared.config import ServerSettings
from support.ports import answers, free_port
from tests import nginx
from tests.processes import Processes, wait_for
from tests.test_deploy import compose, compose_cli  # noqa: F401  (the compose file as Compose resolves it)

pytestmark = pytest.mark.slow
WORKERS = 2
THREADS = ServerSettings.from_env({}).threads  # requests one worker serves at once, by default
IP_LIMIT = 2


@contextlib.contextmanager
def serving_identity(databases, tmp_path, **env):
    """`python -m services.identity serve` (gunicorn with deploy/gunicorn.conf.py) on a free port; its URL."""
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "PYTHONUNBUFFERED": "1",
           "IDENTITY_DATABASE_URL": databases.fresh("sqlite", "services.identity"), "VAR_DIR": str(tmp_path / "var"),
           "IDENTITY_PORT": str(port), "WEB_CONCURRENCY": str(WORKERS), **env}
    processes = Processes(tmp_path, env)
    processes.start("identity", "services.identity", "serve")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(port, "/healthz"), timeout=60, what="identity to serve")
        yield url
    finally:
        processes.stop_all()


@pytest.fixture
def identity(databases, tmp_path):
    with serving_identity(databases, tmp_path) as url:
        yield url


@pytest.fixture(params=["gthread", "sync"])
def each_worker_class(request, databases, tmp_path):
    """Identity served by each GUNICORN_WORKER_CLASS; (worker class, URL)."""
    with serving_identity(databases, tmp_path, GUNICORN_WORKER_CLASS=request.param) as url:
        yield request.param, url


@pytest.fixture
def proxied_identity(compose, databases, tmp_path):
    """Identity as compose configures it for nginx in front (PROXY_HOPS), allowing IP_LIMIT sign-ups per
    client address and minute."""
    with serving_identity(databases, tmp_path, PROXY_HOPS=compose["services"]["identity"]["environment"]["PROXY_HOPS"],
                          IP_RATE_LIMIT_PER_MINUTE=str(IP_LIMIT)) as url:
        yield url


def exchange(port: int, data: bytes) -> tuple[str, dict, bytes]:
    """Send raw bytes, read the whole answer (the server closes); returns status line, headers, body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    return status, {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}, body


MALFORMED = {
    "a bad request line": (b"NOT A REQUEST LINE\r\n\r\n", 400),
    "a header name with a space": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400),
    "a URI over the limit": (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "too many headers": (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(120))
                         + b"\r\n", 431),
    "a header too long": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n", 431),
}


def assert_problem_bytes(status_line: str, headers: dict, body: bytes, status: int) -> dict:
    assert status_line.split(" ")[1] == str(status), status_line
    assert headers["content-type"] == "application/problem+json", (headers, body[:200])
    problem = json.loads(body)
    assert problem["status"] == status and problem["code"] and problem["detail"].endswith("."), problem
    assert set(problem) == {"type", "title", "status", "detail", "code"}, problem
    assert int(headers["content-length"]) == len(body)
    return problem


@pytest.mark.parametrize("name", MALFORMED)
def test_gunicorn_answers_a_malformed_request_with_a_problem(each_worker_class, name):
    _worker_class, identity = each_worker_class
    data, status = MALFORMED[name]

    problem = assert_problem_bytes(*exchange(int(identity.rsplit(":", 1)[1]), data), status)

    assert b"<html" not in json.dumps(problem).encode()
    assert requests.get(f"{identity}/healthz", timeout=5).status_code == 200  # the worker carries on


def test_connections_are_kept_alive_unless_the_sync_worker_serves(each_worker_class):
    worker_class, identity = each_worker_class
    connection = http.client.HTTPConnection("127.0.0.1", int(identity.rsplit(":", 1)[1]), timeout=10)
    try:
        answers = []
        for _ in range(3):
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            response.read()
            answers.append((response.status, response.getheader("Connection"), connection.sock is not None))
    finally:
        connection.close()

    if worker_class == "gthread":  # the default: one connection for all three
        assert answers == [(200, "keep-alive", True)] * 3
    else:
        assert answers == [(200, "close", False)] * 3


# -- nginx -------------------------------------------------------------------------------------------


def test_the_checked_in_nginx_config_is_valid(tmp_path):
    result = subprocess.run(nginx.command(tmp_path, nginx.NGINX_DIR / "nginx.conf") + ["-t"], capture_output=True,
                            text=True, timeout=30)

    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.fixture
def edge(proxied_identity, tmp_path):
    """deploy/nginx/nginx.conf with its ports on free loopback ones, in front of the live identity; its ports.
    Tenancy's and the notifier's servers point at a closed port (nothing listens there)."""
    ports = {service: free_port() for service in nginx.SERVICES}
    upstreams = {"identity": proxied_identity.removeprefix("http://"), "tenancy": "127.0.0.1:1",
                 "notifier": "127.0.0.1:1"}
    with nginx.Nginx(tmp_path, ports, upstreams):
        yield ports


class SlowClients:
    """Connections that send a request line and then one header byte every half second, never finishing."""

    def __init__(self, port: int, count: int):
        self.sockets = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drip, daemon=True)

    def _drip(self) -> None:
        for sock in self.sockets:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        while not self.stop.wait(0.5):
            for sock in self.sockets:
                try:
                    sock.sendall(b"a")
                except OSError:  # the server gave up on this one: that is allowed
                    pass

    def __enter__(self) -> SlowClients:
        self.thread.start()
        time.sleep(1)  # every connection has been accepted and is dripping
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()


def test_slow_clients_freeze_gunicorn_when_it_faces_them(databases, tmp_path):
    """The attack, without nginx: twice as many drippers as request threads and identity stops answering.

    One worker: with two, a gthread worker may accept every dripper while the other stays free, and
    whether both freeze would depend on how the kernel shares the connections out."""
    with serving_identity(databases, tmp_path, WEB_CONCURRENCY="1") as identity:
        with SlowClients(int(identity.rsplit(":", 1)[1]), THREADS * 2):
            with pytest.raises(requests.Timeout):
                requests.get(f"{identity}/healthz", timeout=3)


def test_behind_nginx_slow_clients_do_not_hold_identity(edge):
    with SlowClients(edge["identity"], WORKERS * THREADS * 4):
        answered = requests.get(f"http://127.0.0.1:{edge['identity']}/healthz", timeout=10)
        signed_up = requests.post(f"http://127.0.0.1:{edge['identity']}/v1/accounts", timeout=30, json={
            "email": "edge@example.com", "password": "a long enough passphrase", "first_name": "E", "last_name": "G"})

    assert answered.status_code == 200 and answered.json() == {"status": "ok"}
    assert signed_up.status_code == 201, signed_up.text


def test_nginx_answers_its_own_errors_with_problems(edge):
    cases = [
        (edge["identity"], b"NOT A REQUEST LINE\r\n\r\n", 400),
        (edge["identity"], b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (edge["identity"], b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (edge["identity"], b"POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n", 413),
        (edge["identity"], b"GET /_threshold/problem HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
        (edge["tenancy"], b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 502),
    ]
    for port, data, status in cases:
        assert_problem_bytes(*exchange(port, data), status)


def test_nginx_passes_the_services_own_answers_through(edge):
    """Identity's own error answers are its own (they carry its X-Request-ID): nginx does not replace them."""
    unknown = requests.get(f"http://127.0.0.1:{edge['identity']}/no-such-page", timeout=10,
                           headers={"X-Request-ID": "edge-404"})
    invalid = requests.post(f"http://127.0.0.1:{edge['identity']}/v1/accounts", json={}, timeout=10,
                            headers={"X-Request-ID": "edge-422"})

    assert unknown.status_code == 404 and unknown.headers["X-Request-ID"] == "edge-404"
    assert invalid.status_code == 422 and invalid.headers["X-Request-ID"] == "edge-422"
    assert invalid.json()["code"] == "validation_failed"


def sign_up_from(source: str, port: int, address: str, forwarded_for: str | None = None) -> int:
    """A sign-up sent from the loopback address `source` (all of 127.0.0.0/8 is this machine); its status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    headers = {"Content-Type": "application/json", **({"X-Forwarded-For": forwarded_for} if forwarded_for else {})}
    body = {"email": address, "password": "a long enough passphrase", "first_name": "E", "last_name": "G"}
    try:
        connection.request("POST", "/v1/accounts", json.dumps(body), headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_behind_nginx_each_client_address_has_its_own_limit(edge):
    """With PROXY_HOPS as compose sets it, identity sees each client's address, not nginx's: one client
    that used up its sign-ups does not use up another's, and a forged X-Forwarded-For buys it none."""
    port = edge["identity"]
    statuses = [sign_up_from("127.0.0.2", port, f"first-{n}@example.com") for n in range(IP_LIMIT)]
    forged = sign_up_from("127.0.0.2", port, "forged@example.com", forwarded_for="203.0.113.7")
    other_client = sign_up_from("127.0.0.3", port, "second@example.com")

    assert statuses == [201] * IP_LIMIT
    assert forged == 429
    assert other_client == 201
