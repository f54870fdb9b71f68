"""What every run measures besides identity: the bare argon2id verify rate and a bare flask-smorest
endpoint served by the same gunicorn configuration as identity (the judged baselines), and the
informational floors: the refresh floor on each database and the RSS of the stack's libraries."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import load, rotation_floor, servers
from services.identity import passwords

PASSWORD = "baseline-Correct-Horse-42"


@dataclass(frozen=True)
class VerifyRate:
    calls: int
    seconds: float  # wall clock
    cpu_seconds: float  # this thread's CPU time

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    @property
    def rate_per_cpu_second(self) -> float:
        return self.calls / self.cpu_seconds

    def __add__(self, other: VerifyRate) -> VerifyRate:
        return VerifyRate(self.calls + other.calls, self.seconds + other.seconds, self.cpu_seconds + other.cpu_seconds)


def verify_rate(duration: float, windows: int = 1) -> VerifyRate:
    """`passwords.HASHER.verify` calls in this thread (one core) for about `duration` seconds, as
    `windows` consecutive windows; the window with the most calls per CPU-second counts."""
    password_hash = passwords.HASHER.hash(PASSWORD)
    passwords.HASHER.verify(password_hash, PASSWORD)
    rates = []
    for _window in range(windows):
        calls, started, cpu_started = 0, time.perf_counter(), time.thread_time()
        while time.perf_counter() - started < duration / windows:
            passwords.HASHER.verify(password_hash, PASSWORD)
            calls += 1
        rates.append(VerifyRate(calls, time.perf_counter() - started, time.thread_time() - cpu_started))
    return max(rates, key=lambda rate: rate.rate_per_cpu_second)


def bare_endpoint(var_dir: Path, cpu: int | None, clients: int, duration: float, warmup: float,
                  windows: int = 1) -> tuple[servers.Phase, servers.Phase]:
    """GET /v1/ping (the judged baseline), then POST /v1/ping with a refresh-sized JSON body (the
    framework's floor for a request with a body, informational), on `bench.bare_app` under gunicorn
    with one worker."""
    port = servers.free_port()
    env = dict(os.environ, WEB_CONCURRENCY="1", PYTHONUNBUFFERED="1")
    argv = servers.gunicorn_argv("bench.bare_app:create_app()", port)
    body = {"refresh_token": "x" * 43}  # as long as a real one

    def get_step(_index):
        return lambda client: client.call("GET", "/v1/ping")[0] == 200

    def post_step(_index):
        return lambda client: client.call("POST", "/v1/ping", body)[0] == 200

    with servers.Server(argv, env, port, var_dir / "bare.log", cpu) as server:
        return (servers.measure(server, get_step, clients, duration, warmup, windows),
                servers.measure(server, post_step, clients, duration, warmup, windows))


def refresh_floor(database_url: str, var_dir: Path, cpu: int | None, clients: int, duration: float,
                   warmup: float, windows: int = 1) -> servers.Phase:
    """POST /v1/rotate on `bench.rotation_floor` under gunicorn with one worker, each client rotating
    its own token chain: the floor under a refresh on this database (informational)."""
    issued = rotation_floor.seed(database_url, clients)
    port = servers.free_port()
    env = dict(os.environ, WEB_CONCURRENCY="1", PYTHONUNBUFFERED="1", **{rotation_floor.URL_VARIABLE: database_url})
    argv = servers.gunicorn_argv("bench.rotation_floor:create_app()", port)

    with servers.Server(argv, env, port, var_dir / "rotation-floor.log", cpu) as server:
        return servers.measure(server, lambda index: load.rotating("/v1/rotate", issued[index]), clients, duration,
                               warmup, windows)


# What a sign-in worker cannot do without, by the chosen stack: gunicorn, Flask and flask-smorest,
# SQLAlchemy with its ORM, python-jose and cryptography, argon2-cffi, prometheus-client and kombu (the
# readiness check); psycopg too on PostgreSQL. Nothing of Threshold's own.
STACK = ("gunicorn.app.wsgiapp", "gunicorn.workers.sync", "flask", "flask_smorest", "sqlalchemy.orm", "jose.jwt",
         "cryptography.hazmat.primitives.asymmetric.ec", "argon2", "prometheus_client", "kombu.connection")


def stack_rss_mb(postgres: bool) -> float:
    """VmRSS of a fresh interpreter once the stack's libraries are imported and one ES256 signature made
    and checked (OpenSSL sets itself up on first use): the floor under a worker's memory before
    argon2id's working block."""
    modules = STACK + (("psycopg", "sqlalchemy.dialects.postgresql.psycopg") if postgres else
                       ("sqlalchemy.dialects.sqlite",))
    code = ("import importlib, sys\nfor name in sys.argv[1:]: importlib.import_module(name)\n"
            "from cryptography.hazmat.primitives import hashes\n"
            "from cryptography.hazmat.primitives.asymmetric import ec\n"
            "key = ec.generate_private_key(ec.SECP256R1())\n"
            "key.public_key().verify(key.sign(b'x', ec.ECDSA(hashes.SHA256())), b'x', ec.ECDSA(hashes.SHA256()))\n"
            "print(open('/proc/self/status').read())")
    status = subprocess.run([sys.executable, "-c", code, *modules], check=True, capture_output=True, text=True).stdout
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def argon2_block_mb() -> float:
    return passwords.HASHER.memory_cost / 1024
