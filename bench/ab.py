"""The interleaved A/B harness: every side of a comparison measured in turn, round after round (A, B, A,
B, ...), each window per CPU-second of the server's whole process tree; a ratio is read per round, on
windows taken minutes apart at most, and the median of the rounds' ratios is the figure.

A side is anything that can measure a window: an HTTP server under load (`http_side`) or a loop in this
process pinned to the servers' core (`verify_side`, argon2id's verify)."""
from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench import load, servers
from services.identity import passwords


@dataclass(frozen=True)
class Window:
    requests: int
    errors: int
    seconds: float  # wall clock
    cpu_seconds: float  # the server tree's utime + stime (with reaped children) over the window
    first_error: str = ""
    client_cpu: float = 0.0  # cores the load driver used

    @property
    def per_cpu(self) -> float:
        return self.requests / self.cpu_seconds if self.cpu_seconds > 0 else 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Side:
    name: str  # the column it takes: "Threshold (sync)", "fastapi-users", ...
    what: str  # the request: "POST /v1/sessions"
    measure: Callable[[float, float], Window]  # (seconds, warm-up) -> one window


def http_side(name: str, what: str, port: int, pid: int, make_step: Callable[[int], load.Step], clients: int,
              prepare: Callable[[float], None] | None = None) -> Side:
    """`clients` threads against `port`, each keeping its step (and the step its state) across windows;
    `prepare(seconds)` runs before each window, given how long its clients will run (minting the
    authorization codes they will exchange)."""
    steps: list[load.Step] = []

    def measure(seconds: float, warmup: float) -> Window:
        if prepare is not None:
            prepare(load.LEAD_IN + warmup + seconds)
        if not steps:
            steps.extend(make_step(index) for index in range(clients))
        result = load.run(port, lambda index: steps[index], clients, seconds, warmup,
                          probe=lambda: servers.tree_cpu_seconds(pid))
        before, after = result.probes
        return Window(result.requests, result.errors, seconds, after - before, result.first_error, result.client_cpu)

    return Side(name, what, measure)


def verify_side(cpu: int | None) -> Side:
    """`passwords.HASHER.verify` in a loop in this process, pinned to the servers' core."""
    password_hash = passwords.HASHER.hash("baseline-Correct-Horse-42")

    def measure(seconds: float, warmup: float) -> Window:
        mine = os.sched_getaffinity(0)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        try:
            passwords.HASHER.verify(password_hash, "baseline-Correct-Horse-42")
            calls, started, cpu_started = 0, time.perf_counter(), time.thread_time()
            while time.perf_counter() - started < seconds:
                passwords.HASHER.verify(password_hash, "baseline-Correct-Horse-42")
                calls += 1
            return Window(calls, 0, time.perf_counter() - started, time.thread_time() - cpu_started)
        finally:
            os.sched_setaffinity(0, mine)

    return Side("argon2id verify", "passwords.HASHER.verify, one core, in-process", measure)


@dataclass(frozen=True)
class Ratio:
    numerator: str  # side names
    denominator: str
    target: float | None  # None: shown for information (a floor against a peer), judged against no target


@dataclass
class Comparison:
    operation: str
    backend: str
    sides: list[Side]
    ratios: list[Ratio]
    windows: dict[str, list[Window]] = field(default_factory=dict)

    def per_round(self, ratio: Ratio) -> list[float]:
        pairs = zip(self.windows[ratio.numerator], self.windows[ratio.denominator], strict=True)
        return [a.per_cpu / b.per_cpu if b.per_cpu else 0.0 for a, b in pairs]

    def median(self, ratio: Ratio) -> float:
        return statistics.median(self.per_round(ratio))

    def median_per_cpu(self, side: str) -> float:
        return statistics.median(window.per_cpu for window in self.windows[side])


def interleave(comparison: Comparison, rounds: int, seconds: float, warmup: float, warm_round: float = 0.0
               ) -> Comparison:
    """Rounds of one window per side, in the same order each round; first, when `warm_round` is set, one
    window of that length per side whose figures are dropped (node's JIT, caches and pools warmed up)."""
    if warm_round:
        for side in comparison.sides:
            side.measure(warm_round, 0.0)
    comparison.windows = {side.name: [] for side in comparison.sides}
    for _ in range(rounds):
        for side in comparison.sides:
            comparison.windows[side.name].append(side.measure(seconds, warmup))
    return comparison
