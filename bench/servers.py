"""Starting and stopping a server for a benchmark, and reading the CPU time and memory of its process tree."""
from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from support import ROOT
from support.ports import answers
from support.processes import log_tail, spawn, stop_group

GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    # Fields after the command name, which may itself hold spaces: [0] is field 3 (state) of proc(5).
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def descendants(root: int) -> list[int]:
    """`root` and every live process below it (the server's whole tree: master, workers, helpers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = _stat_fields(int(entry))
            except OSError:
                continue
            if fields[0] not in ("Z", "X"):
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def pin_tree(root: int, cpu: int) -> None:
    """Every thread of every process of the tree onto `cpu` (what each forks or spawns later inherits it)."""
    for pid in descendants(root):
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                os.sched_setaffinity(int(task.name), {cpu})
            except (ProcessLookupError, PermissionError):
                continue


def tree_cpu_seconds(root: int) -> float:
    """utime + stime of every process in the tree, plus cutime + cstime (children each has reaped, such
    as workers recycled by gunicorn's max_requests): everything the server has spent since it started."""
    total = 0
    for pid in descendants(root):
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue  # exited meanwhile: its parent's cutime has it once the parent reaps it
        total += sum(int(value) for value in fields[11:15])
    return total / CLOCK_TICKS


@dataclass(frozen=True)
class Memory:
    """One process's memory in MB (/proc/<pid>/smaps_rollup): unique to it (USS), its share of pages
    mapped by several (PSS), and everything mapped (RSS)."""

    uss_mb: float
    pss_mb: float
    rss_mb: float


def memory(pid: int) -> Memory | None:
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return None
    kb = {line.split(":")[0]: int(line.split()[1]) for line in lines[1:] if line.rstrip().endswith("kB")}
    return Memory((kb["Private_Clean"] + kb["Private_Dirty"]) / 1024, kb["Pss"] / 1024, kb["Rss"] / 1024)


class Server:
    """A gunicorn master in its own process group, pinned to `cpu`; `with` stops the whole group."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, log_path: Path, cpu: int | None,
                 forks: bool = True):
        self.forks = forks  # a master that forks workers (gunicorn): ready once a worker is there too
        self.boot_unpinned = False
        self.quick_stop = False  # SIGINT, SIGKILL after 2 s, rather than a graceful SIGTERM
        self.argv = argv
        self.env = env
        self.port = port
        self.log_path = log_path
        self.cpu = cpu
        self.process: subprocess.Popen | None = None

    def start(self, boot_unpinned: bool = False) -> Server:
        """Start the process without waiting (several servers boot side by side; `with` then waits).
        `boot_unpinned`: boot on every core, and be pinned, every thread of the tree, once ready."""
        self.boot_unpinned = boot_unpinned
        pin = (functools.partial(os.sched_setaffinity, 0, {self.cpu}) if self.cpu is not None and not boot_unpinned
               else None)
        self.process = spawn(self.argv, self.env, self.log_path, preexec_fn=pin)
        return self

    @property
    def running(self) -> subprocess.Popen:
        """The master's process; RuntimeError before `start()`."""
        if self.process is None:
            raise RuntimeError(f"{' '.join(self.argv)} was not started")
        return self.process

    def __enter__(self) -> Server:
        if self.process is None:
            self.start()
        try:
            self.wait_ready()
            if self.boot_unpinned and self.cpu is not None:
                pin_tree(self.pid, self.cpu)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (code := self.running.poll()) is not None:
                raise RuntimeError(f"server exited with {code}:\n{self.log_tail()}")
            if answers(self.port, "/healthz") and (self.workers() or not self.forks):
                return
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log_tail()}")

    def workers(self) -> list[int]:
        """Pids of the master's children (gunicorn workers)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.pid:
                    pids.append(int(entry.name))
        return pids

    @property
    def pid(self) -> int:
        """The root of the server's process tree."""
        return self.running.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            if self.quick_stop:  # gunicorn's quick shutdown; its gthread worker may still wait graceful_timeout
                stop_group(self.process, timeout=2, signum=signal.SIGINT)
            else:
                stop_group(self.process, timeout=25)

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)


def gunicorn_argv(app_factory: str, port: int) -> list[str]:
    """The command `shared.processes.serve` execs, for an app that has no `serve` entry point."""
    return [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), "--bind", f"127.0.0.1:{port}",
            app_factory]
