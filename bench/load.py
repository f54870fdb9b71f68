"""The HTTP load driver: client threads with http.client, each looping over its own step for a fixed time.

Only requests that complete inside the measured window count; the warm-up before it is discarded.
Every connection is to 127.0.0.1, every run ends at its deadline.
"""
from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

LEAD_IN = 0.1  # seconds: the clients start this long before the warm-up (connecting, first requests)


class Exhausted(Exception):
    """Raised by a step that has nothing left to send (every authorization code minted for the window is
    used): its client stops until the window ends; the server's CPU counts only what it answered."""


class Client:
    """One keep-alive connection (gunicorn's sync workers close it after each response; http.client
    then reconnects by itself)."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None,
             form: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
        """One request; `body` goes as JSON, `form` form-encoded; the status and the JSON answer."""
        headers = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if form is not None:
            data = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            payload = response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            raise
        return response.status, json.loads(payload) if payload else {}

    def close(self) -> None:
        self.conn.close()


Step = Callable[[Client], bool]  # one request; True when the answer was the expected one


def rotating(path: str, first_token: str) -> Step:
    """A step that presents a refresh token at `path` and keeps the one each answer hands out: one
    client's token chain, as a signed-in client refreshes."""
    chain = {"token": first_token}

    def step(client: Client) -> bool:
        status, body = client.call("POST", path, {"refresh_token": chain["token"]})
        if status != 200:
            return False
        chain["token"] = body["refresh_token"]
        return True

    return step


@dataclass
class Result:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    client_cpu: float = 0.0  # cores the load driver's process used during the window
    probes: tuple = (None, None)  # probe() at the start and at the end of the window
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(port: int, make_step: Callable[[int], Step], clients: int, duration: float, warmup: float = 1.0,
        probe: Callable[[], object] | None = None) -> Result:
    """Run `clients` threads, thread i looping over `make_step(i)`, for `warmup` + `duration` seconds."""
    result = Result(seconds=duration)
    lock = threading.Lock()
    steps = [make_step(index) for index in range(clients)]
    window_start = time.monotonic() + LEAD_IN + warmup
    window_end = window_start + duration

    def loop(step: Step) -> None:
        client = Client(port)
        latencies, requests, errors, first_error = [], 0, 0, ""
        try:
            while (started := time.monotonic()) < window_end:
                try:
                    ok = step(client)
                except Exhausted:
                    break
                except Exception as exc:  # a broken connection or answer: count it and go on until the deadline
                    ok, first_error = False, first_error or f"{type(exc).__name__}: {exc}"
                    time.sleep(0.01)
                finished = time.monotonic()
                if window_start <= finished <= window_end:
                    if ok:
                        requests += 1
                        latencies.append(finished - started)
                    else:
                        errors += 1
        finally:
            client.close()
            with lock:
                result.requests += requests
                result.errors += errors
                result.latencies.extend(latencies)
                result.first_error = result.first_error or first_error

    threads = [threading.Thread(target=loop, args=(step,), daemon=True) for step in steps]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, window_start - time.monotonic()))
    before, cpu_before = (probe() if probe else None), time.process_time()
    time.sleep(max(0.0, window_end - time.monotonic()))
    after, cpu_after = (probe() if probe else None), time.process_time()
    for thread in threads:
        thread.join(timeout=60)
    result.client_cpu = (cpu_after - cpu_before) / duration
    result.probes = (before, after)
    return result
