"""Where the real PostgreSQL and RabbitMQ are, and fresh databases for each test.

Locally a test that needs PostgreSQL or RabbitMQ skips when the server does not answer on loopback;
with CI=true it fails instead, so CI can never go green on skipped database or bus tests.
"""
from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
ROOT = Path(__file__).resolve().parents[1]
_counter = itertools.count()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@cache
def postgres_available() -> bool:
    return _port_open(5432)


@cache
def rabbitmq_available() -> bool:
    return _port_open(5672)


def require(available: bool, what: str) -> None:
    if available:
        return
    if CI:
        pytest.fail(f"{what} does not answer on loopback and CI=true: this test must run")
    pytest.skip(f"{what} does not answer on loopback")


def migrate(module: str, url: str) -> None:
    env = dict(os.environ, **{f"{module.rsplit('.', 1)[1].upper()}_DATABASE_URL": url, "APP_ENV": "test"})
    subprocess.run([sys.executable, "-m", module, "migrate"], env=env, check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _admin_execute(statement: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(statement)


class DatabaseFactory:
    """Fresh migrated databases: one template per service per test run, copied for each test."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.templates: dict[tuple[str, str], str] = {}
        self.created: list[str] = []
        self.run_id = f"{os.getpid()}"

    def _template(self, backend: str, module: str) -> str:
        key = (backend, module)
        if key not in self.templates:
            service = module.rsplit(".", 1)[1]
            if backend == "sqlite":
                path = self.workdir / f"template-{service}.db"
                migrate(module, f"sqlite:///{path}")
                self.templates[key] = str(path)
            else:
                name = f"thr_tpl_{service}_{self.run_id}"
                _admin_execute(f"DROP DATABASE IF EXISTS {name}")
                _admin_execute(f"CREATE DATABASE {name}")
                self.created.append(name)
                migrate(module, _pg_url(name))
                self.templates[key] = name
        return self.templates[key]

    def fresh(self, backend: str, module: str) -> str:
        template = self._template(backend, module)
        number = next(_counter)
        if backend == "sqlite":
            path = self.workdir / f"db-{number}.db"
            shutil.copyfile(template, path)
            return f"sqlite:///{path}"
        name = f"thr_t{number}_{self.run_id}"
        _admin_execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        self.created.append(name)
        return _pg_url(name)

    def drop(self, url: str) -> None:
        if url.startswith("postgresql"):
            name = url.rsplit("/", 1)[1]
            _admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(reversed(self.created)):
            _admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.created.clear()


def _pg_url(name: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RabbitVhost:
    """A virtual host of its own on the loopback RabbitMQ, so a test run's queues never meet another's."""

    def __init__(self, name: str):
        self.name = name

    @staticmethod
    def _ctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=60)

    def create(self) -> "RabbitVhost":
        self._ctl("add_vhost", self.name)
        self._ctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        return self

    def delete(self) -> None:
        self._ctl("delete_vhost", self.name)

    def url(self, port: int = 5672) -> str:
        return f"amqp://guest:guest@127.0.0.1:{port}/{self.name}"
