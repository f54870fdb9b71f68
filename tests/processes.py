"""Running Threshold's processes from tests: each a child in its own process group, its output in a
log file, stopped (or killed) when the test ends; and a bounded wait."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from support.processes import python_module, spawn, stop_group


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
        child = spawn(python_module(*args), {**self.env, **env}, self.workdir / f"{name}.log")
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
            stop_group(self.children.pop(name), timeout=20)
