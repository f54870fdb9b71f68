"""`python -m services.run` (what `make run` calls): migrate, then run every process on one machine.

Identity, tenancy, notifier and web HTTP servers under gunicorn, and the background loops: both outbox
relays and the notifier's mailer (consumer). In the embedded default (SQLite files, kombu's filesystem
bus) the three loops are threads of one process, `services.embedded_workers`, which restarts a loop that
fails; with PostgreSQL or RabbitMQ configured each is a process of its own, as in compose and Kubernetes.
Every process is a child with prefixed output. A child that dies is started again, as a process
manager would: after 1 s, doubling up to 30 s while it keeps dying, back to 1 s once it stayed up a
minute; each exit and restart is logged. Ctrl-C (or SIGTERM) stops them all. A broken configuration
never half-runs: every setting is validated, and every migration run, before anything starts.

The supervisor itself imports nothing heavy (it stays at a few MB): the settings are validated in a
short-lived child (`python -m services.run check`) that reports what the supervisor needs as JSON.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from services.embedded_workers import (  # noqa: F401 (the restart policy, shared with the loops' threads)
    FIRST_RESTART_DELAY,
    MAX_RESTART_DELAY,
    STABLE_AFTER,
    restart_delay,
)
from shared import config

HTTP_SERVERS = {
    "identity": (["services.identity", "serve"], "identity"),
    "tenancy": (["services.tenancy", "serve"], "tenancy"),
    "notifier": (["services.notifier", "serve"], "notifier"),
    "web": (["services.web", "serve"], "web"),
}
#: name -> (module arguments, the service whose metrics it adds to): the loops, a process each
SEPARATE_WORKERS = {
    "mailer": (["services.notifier", "consume"], "notifier"),
    "identity-relay": (["services.identity", "relay"], "identity-relay"),
    "tenancy-relay": (["services.tenancy", "relay"], "tenancy-relay"),
}
#: the embedded default: the three loops as threads of one process (the mailer's metrics are the notifier's)
SHARED_WORKERS = {"workers": (["services.embedded_workers"], "notifier")}
MIGRATIONS = ["services.identity", "services.tenancy", "services.notifier", "services.web"]
#: gunicorn workers per HTTP server unless WEB_CONCURRENCY says otherwise: one developer's requests on one
#: machine (each worker is 55-90 MB; production sizes them by cores, deploy/gunicorn.conf.py).
WORKERS = "1"


def processes(shared: bool) -> dict[str, tuple[list[str], str]]:
    """name -> (module arguments, metrics group) of every child, for one layout of the background loops."""
    return {**HTTP_SERVERS, **(SHARED_WORKERS if shared else SEPARATE_WORKERS)}


def check() -> None:
    """`python -m services.run check`: validate every service's settings (one line and exit 2 on the first
    bad one), then print what the supervisor needs as one JSON line."""
    from services.embedded_workers import shares_one_process
    from services.identity.settings import Settings as IdentitySettings
    from services.notifier.settings import Settings as NotifierSettings
    from services.tenancy.settings import Settings as TenancySettings
    from services.web.settings import Settings as WebSettings

    identity, tenancy, notifier, web = [
        config.load_or_exit(loader) for loader in (IdentitySettings.from_env, TenancySettings.from_env,
                                                   NotifierSettings.from_env, WebSettings.from_env)]
    shared = shares_one_process([identity.database_url, tenancy.database_url, notifier.database_url],
                                identity.broker_url)
    print(json.dumps({"var_dir": str(identity.var_dir), "sign_up": f"{web.public_url}/sign-up", "shared": shared}))


def _validate(env: dict) -> dict:
    """Every service's settings, checked in a child so that the supervisor never imports them; exits
    with the child's code (2, after its one line) on a bad one."""
    result = subprocess.run([sys.executable, "-m", "services.run", "check"], env=env, stdout=subprocess.PIPE)
    if result.returncode != 0:
        sys.exit(result.returncode)
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


def banner(env, sign_up: str) -> str:
    """The lines printed once every process is started: the sign-up page, and where each API's interactive
    docs answer."""
    return (f"threshold: open {sign_up}\n"
            + "threshold: API docs  " + "  ".join(f"{service} {config.local_url(env, service)}/docs"
                                                  for service in ("identity", "tenancy", "notifier")))


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the supervisor itself dies (Linux), so no process is orphaned."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _pipe(name: str, stream) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"{name:>15} | {line.decode(errors='replace')}")
        sys.stdout.flush()


class Child:
    """One supervised process: started, and started again after it exits."""

    def __init__(self, name: str, args: list[str], env: dict):
        self.name = name
        self.args = args
        self.env = env
        self.process: subprocess.Popen
        self.started_at = 0.0
        self.delay: float | None = None  # the last restart delay, None until it first exits
        self.restart_at: float | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", *self.args], env=self.env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=_die_with_parent)
        self.started_at = time.monotonic()
        self.restart_at = None
        threading.Thread(target=_pipe, args=(self.name, self.process.stdout), daemon=True).start()

    def tend(self) -> None:
        """Notice an exit and schedule the restart, or restart when the delay is over."""
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                print(f"threshold: restarting {self.name}", flush=True)
                self.start()
            return
        code = self.process.poll()
        if code is None:
            return
        self.delay = restart_delay(self.delay, now - self.started_at)
        self.restart_at = now + self.delay
        print(f"threshold: {self.name} exited with {code}; restarting in {self.delay:g}s", flush=True)

    def terminate(self) -> None:
        if self.restart_at is None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, deadline: float) -> None:
        try:
            self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main() -> None:
    if sys.argv[1:] == ["check"]:
        check()
        return
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("WEB_CONCURRENCY", WORKERS)
    layout = _validate(env)
    for module in MIGRATIONS:
        result = subprocess.run([sys.executable, "-m", module, "migrate"], env=env)
        if result.returncode != 0:
            sys.exit(result.returncode)

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())

    # Each service's processes share one metrics directory, so /metrics counts every worker (and the
    # notifier's consumer); stale files of an earlier run would be counted too, so start afresh.
    metrics_root = Path(layout["var_dir"]) / "metrics"
    shutil.rmtree(metrics_root, ignore_errors=True)
    children: list[Child] = []
    for name, (args, metrics_group) in processes(layout["shared"]).items():
        (metrics_root / metrics_group).mkdir(parents=True, exist_ok=True)
        child = Child(name, args, {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_root / metrics_group)})
        child.start()
        children.append(child)
    print(banner(env, layout["sign_up"]), flush=True)

    while not stopping.is_set():
        for child in children:
            child.tend()
        stopping.wait(0.5)

    for child in children:
        child.terminate()
    deadline = time.monotonic() + 25
    for child in children:
        child.wait(deadline)
    print("threshold: stopped", flush=True)


if __name__ == "__main__":
    main()
