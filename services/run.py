"""`python -m services.run` (what `make run` calls): migrate, then run every process on one machine.

Identity, tenancy and notifier HTTP servers under gunicorn, the notifier's consumer and both outbox
relays, as child processes with prefixed output. Ctrl-C (or SIGTERM) stops them all; if one dies, the
rest are stopped too, so a broken setup never half-runs.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

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


def _validate() -> None:
    from services.identity.settings import Settings as IdentitySettings
    from services.notifier.settings import Settings as NotifierSettings
    from services.tenancy.settings import Settings as TenancySettings

    for loader in (IdentitySettings.from_env, TenancySettings.from_env, NotifierSettings.from_env):
        config.load_or_exit(loader)
    for name, default in (("IDENTITY_PORT", 8001), ("TENANCY_PORT", 8002), ("NOTIFIER_PORT", 8003)):
        config.load_or_exit(lambda env: config.integer(env, name, default, minimum=1, maximum=65535))


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


def main() -> None:
    _validate()
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
    metrics_root = config.var_dir(env) / "metrics"
    shutil.rmtree(metrics_root, ignore_errors=True)
    children: dict[str, subprocess.Popen] = {}
    for name, (args, metrics_group) in PROCESSES.items():
        (metrics_root / metrics_group).mkdir(parents=True, exist_ok=True)
        child_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_root / metrics_group)}
        child = subprocess.Popen([sys.executable, "-m", *args], env=child_env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)
        children[name] = child
        threading.Thread(target=_pipe, args=(name, child.stdout), daemon=True).start()
    print("threshold: identity http://127.0.0.1:%s  tenancy http://127.0.0.1:%s  notifier http://127.0.0.1:%s"
          % (env.get("IDENTITY_PORT", "8001"), env.get("TENANCY_PORT", "8002"), env.get("NOTIFIER_PORT", "8003")),
          flush=True)

    exit_code = 0
    while not stopping.is_set():
        for name, child in children.items():
            if child.poll() is not None:
                print(f"threshold: {name} exited with {child.returncode}; stopping everything", flush=True)
                exit_code = child.returncode or 1
                stopping.set()
                break
        stopping.wait(0.5)

    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 25
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    print("threshold: stopped", flush=True)
    sys.exit(exit_code)


if __name__ == "__main__":
    main()
