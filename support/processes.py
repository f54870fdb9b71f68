"""A child process in a session (so a process group) of its own, its output in a log file, and stopping
the whole group: a server's workers and helpers go with it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from support import ROOT


def python_module(*args: str) -> list[str]:
    """The command line of `python -m <args>` with this interpreter."""
    return [sys.executable, "-m", *args]


def spawn(argv: list[str], env: Mapping[str, str], log_path: Path, cwd: Path = ROOT,
          preexec_fn: Callable[[], object] | None = None) -> subprocess.Popen:
    """Start `argv` in `cwd` (the repository), in a new session (its own process group), stdin from /dev/null
    and stdout and stderr appended to `log_path` (a file, not a pipe: nothing can block on a full pipe)."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=preexec_fn)


def stop_group(process: subprocess.Popen, timeout: float, signum: int = signal.SIGTERM) -> None:
    """SIGTERM (or `signum`) the process group, SIGKILL it after `timeout`, then kill whatever the leader left."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signum)
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def log_tail(log_path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log, or "" when there is none yet."""
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""
