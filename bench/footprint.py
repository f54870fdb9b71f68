"""The memory `make run` costs: the proportional set size (PSS) of every process `python -m services.run`
starts, read from /proc/<pid>/smaps_rollup, once every service is ready and again after sign-ups have
gone through the whole event path (outbox, relay, bus, mailer, .eml file).

PSS splits each shared page among the processes that map it, so the sum over the tree is what the run
takes from the machine (RSS would count the pages gunicorn's workers share with their master many times).

`python -m bench.footprint` prints the table; `total_pss(var_dir)` returns it for `make bench`.
"""
from __future__ import annotations

import email
import email.policy
import http.client
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from support.ports import answers, free_port
from support.processes import log_tail, python_module, spawn, stop_group

READY_TIMEOUT = 90.0
MAIL_TIMEOUT = 60.0
SIGN_UPS = 2
SETTLE = 2.0  # seconds after the last mail, so every loop has gone round at least once more
# What a developer's shell passes on; nothing of Threshold's own configuration leaks in.
PASSED_ON = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def pss_mb(pid: int) -> float | None:
    """Pss of one process in MB, or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def tree(root: int) -> dict[int, list[int]]:
    """parent pid -> child pids, for every live process below `root` (zombies left out)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and fields[0] not in ("Z", "X"):
                children.setdefault(int(fields[1]), []).append(int(entry))
    below: dict[int, list[int]] = {}
    stack = [root]
    while stack:
        pid = stack.pop()
        below[pid] = sorted(children.get(pid, []))
        stack.extend(below[pid])
    return below


def label(pid: int) -> str:
    """A short name for a process of the run, from its command line."""
    args = _cmdline(pid)
    if "services.run" in args:
        return "supervisor"
    for arg in args:  # gunicorn: ... services.identity.app:create_app()
        if arg.startswith("services.") and ".app:" in arg:
            return arg.split(".")[1]
    if "-m" in args and len(args) > args.index("-m") + 1:
        module = args[args.index("-m") + 1]
        rest = [arg for arg in args[args.index("-m") + 2:] if not arg.startswith("-")]
        return " ".join([module.removeprefix("services."), *rest[:1]])
    return " ".join(args[:3]) or str(pid)


def sample(root: int) -> dict:
    """{"processes": {name: MB}, "total": MB, "count": n} for `root` and everything below it. gunicorn's
    workers are named after their master: "identity worker 1", ..."""
    below = tree(root)
    figures: dict[str, float] = {}

    def visit(pid: int, name: str) -> None:
        mb = pss_mb(pid)
        if mb is not None:
            figures[name] = round(mb, 1)
        for number, child in enumerate(below.get(pid, []), 1):
            visit(child, label(child) if pid == root else f"{name} worker {number}")

    visit(root, label(root))
    return {"processes": figures, "total": round(sum(figures.values()), 1), "count": len(figures)}


def _post_json(port: int, path: str, body: dict) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _wait(condition, timeout: float, what: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise RuntimeError(f"services.run exited with {process.returncode}:\n{log_tail(log, 30)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not within {timeout:g}s:\n{log_tail(log, 30)}")
        time.sleep(0.25)


def _ready(ports: dict[str, int]) -> bool:
    return all(answers(port, timeout=5) for port in ports.values())


def _mailed(mail_dir: Path, address: str) -> bool:
    for path in mail_dir.glob("*.eml") if mail_dir.is_dir() else ():
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address:
            return True
    return False


def total_pss(var_dir: Path, env: dict[str, str] | None = None, sign_ups: int = SIGN_UPS) -> dict:
    """Start `python -m services.run` with VAR_DIR=`var_dir` (the embedded default unless `env` says
    otherwise) on free ports, wait until every service is ready, sign up `sign_ups` accounts and wait for
    their mail, then sum the PSS of the whole process tree; Ctrl-C (SIGINT) stops it.

    Returns {"processes": {name: MB}, "total": MB, "count": processes, "at_ready": {"total": MB, "count": n}}:
    "total" is after the sign-ups, "at_ready" before them."""
    var_dir.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ("identity", "tenancy", "notifier", "web")}
    run_env = {key: os.environ[key] for key in PASSED_ON if key in os.environ}
    run_env.update({f"{name.upper()}_PORT": str(port) for name, port in ports.items()})
    run_env.update(VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1",
                   IDENTITY_PUBLIC_URL=f"http://127.0.0.1:{ports['identity']}",
                   WEB_PUBLIC_URL=f"http://127.0.0.1:{ports['web']}", **(env or {}))
    log = var_dir / "services-run.log"
    process = spawn(python_module("services.run"), run_env, log)
    try:
        _wait(lambda: _ready(ports), READY_TIMEOUT, "every service ready", process, log)
        time.sleep(SETTLE)
        at_ready = sample(process.pid)
        for _ in range(sign_ups):
            address = f"footprint-{uuid.uuid4().hex[:12]}@example.com"
            status, body = _post_json(ports["identity"], "/v1/accounts", {
                "email": address, "password": "footprint-Correct-Horse-42", "first_name": "Foot",
                "last_name": "Print"})
            if status != 201:
                raise RuntimeError(f"sign-up answered {status}: {body[:500]!r}")
            _wait(lambda to=address: _mailed(var_dir / "mail", to), MAIL_TIMEOUT, f"the mail to {address}", process,
                  log)
        time.sleep(SETTLE)
        after = sample(process.pid)
        return {**after, "at_ready": {"total": at_ready["total"], "count": at_ready["count"]}}
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """Ctrl-C to the run's process group, then SIGKILL whatever is left."""
    stop_group(process, timeout=30, signum=signal.SIGINT)


def table(figures: dict) -> str:
    lines = [f"{'process':<28} {'PSS MB':>8}"]
    lines += [f"{name:<28} {mb:>8.1f}" for name, mb in figures["processes"].items()]
    lines.append(f"{'total (' + str(figures['count']) + ' processes)':<28} {figures['total']:>8.1f}")
    ready = figures["at_ready"]
    lines.append(f"{'at ready (' + str(ready['count']) + ' processes)':<28} {ready['total']:>8.1f}")
    return "\n".join(lines)


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="threshold-footprint-") as folder:
        print(table(total_pss(Path(folder) / "var")))


if __name__ == "__main__":
    main()
