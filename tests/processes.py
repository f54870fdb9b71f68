"""Running Threshold's processes from tests: each a child in its own process group, its output in a
log file, stopped (or killed) when the test ends; and a bounded wait."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests import backends


def wait_for(predicate, timeout: float = 30.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Processes:
    """Relays and consumers as real child processes, each in its own process group."""

    def __init__(self, workdir: Path, env: dict):
        self.workdir = workdir
        self.env = env
        self.children: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str, **env) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")
        child = subprocess.Popen([sys.executable, "-m", *args], env={**self.env, **env}, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True, cwd=backends.ROOT)
        self.children[name] = child
        return child

    def kill(self, name: str, signum: int = signal.SIGKILL) -> None:
        child = self.children.pop(name)
        os.killpg(child.pid, signum)
        child.wait(timeout=30)

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for name in list(self.children):
            child = self.children.pop(name)
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
