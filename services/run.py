"""`python -m services.run` (what `make run` calls): migrate, then run every process on one machine.

Identity, tenancy and notifier HTTP servers under gunicorn, the notifier's consumer and both outbox
relays, as child processes with prefixed output. A child that dies is started again, as a process
manager would: after 1 s, doubling up to 30 s while it keeps dying, back to 1 s once it stayed up a
minute; each exit and restart is logged. Ctrl-C (or SIGTERM) stops them all. A broken configuration
never half-runs: every setting is validated, and every migration run, before anything starts.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from shared import config

#: name -> (module arguments, the service whose metrics it adds to)
PROCESSES = {
    "identity": (["services.identity", "serve"], "identity"),
    "tenancy": (["services.tenancy", "serve"], "tenancy"),
    "notifier": (["services.notifier", "serve"], "notifier"),
    "mailer": (["services.notifier", "consume"], "notifier"),
    "identity-relay": (["services.identity", "relay"], "identity-relay"),
    "tenancy-relay": (["services.tenancy", "relay"], "tenancy-relay"),
    "web": (["services.web", "serve"], "web"),
}
MIGRATIONS = ["services.identity", "services.tenancy", "services.notifier", "services.web"]
FIRST_RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 60.0  # seconds up after which a child's next exit counts as a first one


def restart_delay(previous: float | None, uptime: float) -> float:
    """How long to wait before starting a child again that exited after `uptime` seconds."""
    if previous is None or uptime >= STABLE_AFTER:
        return FIRST_RESTART_DELAY
    return min(previous * 2, MAX_RESTART_DELAY)


def _validate() -> list[Any]:
    """Every service's settings, or one line and exit 2 before anything is migrated or started."""
    from services.identity.settings import Settings as IdentitySettings
    from services.notifier.settings import Settings as NotifierSettings
    from services.tenancy.settings import Settings as TenancySettings
    from services.web.settings import Settings as WebSettings

    return [config.load_or_exit(loader) for loader in (IdentitySettings.from_env, TenancySettings.from_env,
                                                       NotifierSettings.from_env, WebSettings.from_env)]


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
    identity, _tenancy, _notifier, web = _validate()
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("WEB_CONCURRENCY", "2")
    for module in MIGRATIONS:
        result = subprocess.run([sys.executable, "-m", module, "migrate"], env=env)
        if result.returncode != 0:
            sys.exit(result.returncode)

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())

    # Each service's processes share one metrics directory, so /metrics counts every worker (and the
    # notifier's consumer); stale files of an earlier run would be counted too, so start afresh.
    metrics_root = identity.var_dir / "metrics"
    shutil.rmtree(metrics_root, ignore_errors=True)
    children: list[Child] = []
    for name, (args, metrics_group) in PROCESSES.items():
        (metrics_root / metrics_group).mkdir(parents=True, exist_ok=True)
        child = Child(name, args, {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_root / metrics_group)})
        child.start()
        children.append(child)
    print(banner(env, f"{web.public_url}/sign-up"), flush=True)

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
