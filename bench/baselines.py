"""The two baselines every run measures: the bare argon2id verify rate, and a bare flask-smorest
endpoint served by the same gunicorn configuration as identity."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from bench import servers
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

    def __add__(self, other: "VerifyRate") -> "VerifyRate":
        return VerifyRate(self.calls + other.calls, self.seconds + other.seconds, self.cpu_seconds + other.cpu_seconds)


def verify_rate(duration: float) -> VerifyRate:
    """`passwords.HASHER.verify` calls in this thread (one core) for about `duration` seconds."""
    password_hash = passwords.HASHER.hash(PASSWORD)
    passwords.HASHER.verify(password_hash, PASSWORD)
    calls, started, cpu_started = 0, time.perf_counter(), time.thread_time()
    while time.perf_counter() - started < duration:
        passwords.HASHER.verify(password_hash, PASSWORD)
        calls += 1
    return VerifyRate(calls, time.perf_counter() - started, time.thread_time() - cpu_started)


def bare_endpoint(var_dir: Path, cpu: int | None, clients: int, duration: float, warmup: float) -> servers.Phase:
    """GET /v1/ping on `bench.bare_app` under gunicorn with one worker."""
    port = servers.free_port()
    env = dict(os.environ, WEB_CONCURRENCY="1", PYTHONUNBUFFERED="1")
    argv = servers.gunicorn_argv("bench.bare_app:create_app()", port)

    def make_step(_index):
        return lambda client: client.call("GET", "/v1/ping")[0] == 200

    with servers.Server(argv, env, port, var_dir / "bare.log", cpu) as server:
        return servers.measure(server, make_step, clients, duration, warmup)
