"""`python -m bench`: run every benchmark (two to three minutes), print the tables, write docs/performance.md."""
from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench import baselines, databases, event_path, identity, report, servers

CLIENTS = 4
WARMUP = 1.0
VERIFY_SECONDS = 3.0  # twice: before and after the servers
SIGN_IN_SECONDS = 12.0
SECONDS = 6.0
WINDOWS = 3  # each load, and each baseline, in three windows; the least disturbed one counts


def _stop_on_sigterm() -> None:
    # SIGTERM ends the run like Ctrl-C does, through the `finally` blocks that stop the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def _cores() -> tuple[int | None, set[int]]:
    """(the core for the servers, the cores for the load driver); no pinning on a single core."""
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[-1], set(cpus[:-1])) if len(cpus) > 1 else (None, set(cpus))


def _verify_rate(server_cpu: int | None, client_cpus: set[int]) -> baselines.VerifyRate:
    """The argon2id baseline, on the core the gunicorn workers get."""
    if server_cpu is not None:
        os.sched_setaffinity(0, {server_cpu})
    try:
        return baselines.verify_rate(VERIFY_SECONDS, WINDOWS)
    finally:
        os.sched_setaffinity(0, client_cpus)


def main() -> None:
    _stop_on_sigterm()
    started = time.monotonic()
    host = report.machine()
    all_cpus = os.sched_getaffinity(0)
    server_cpu, client_cpus = _cores()
    settings = {"clients": CLIENTS, "warmup": WARMUP, "sign_in_seconds": SIGN_IN_SECONDS, "seconds": SECONDS,
                "windows": WINDOWS,
                "accounts": CLIENTS * 4}

    print(f"argon2id verify rate, one core ({VERIFY_SECONDS:.0f} s)...", flush=True)
    verify_before = _verify_rate(server_cpu, client_cpus)

    var_dir = Path(tempfile.mkdtemp(prefix="threshold-bench-"))
    figures: dict[str, identity.Figures] = {}
    refresh_floors: dict[str, servers.Phase] = {}
    notes: list[str] = []
    kept = False
    try:
        print("bare flask-smorest endpoint...", flush=True)
        (var_dir / "bare").mkdir()
        bare_before, bare_post_before = baselines.bare_endpoint(var_dir / "bare", server_cpu, CLIENTS, SECONDS,
                                                                WARMUP, WINDOWS)
        print("identity on SQLite, then the refresh floor...", flush=True)
        sqlite_dir = var_dir / "sqlite"
        sqlite_dir.mkdir()
        figures["SQLite"] = identity.run(f"sqlite:///{sqlite_dir / 'identity.db'}", sqlite_dir, server_cpu, CLIENTS,
                                         SIGN_IN_SECONDS, SECONDS, WARMUP, WINDOWS)
        refresh_floors["SQLite"] = baselines.refresh_floor(f"sqlite:///{sqlite_dir / 'floor.db'}", sqlite_dir,
                                                            server_cpu, CLIENTS, SECONDS, WARMUP, WINDOWS)
        if databases.postgres_available():
            print("identity on PostgreSQL, then the refresh floor...", flush=True)
            postgres_dir = var_dir / "postgres"
            postgres_dir.mkdir()
            with databases.fresh_postgres() as url:
                figures["PostgreSQL"] = identity.run(url, postgres_dir, server_cpu, CLIENTS, SIGN_IN_SECONDS,
                                                     SECONDS, WARMUP, WINDOWS)
            with databases.fresh_postgres("floor") as url:
                refresh_floors["PostgreSQL"] = baselines.refresh_floor(url, postgres_dir, server_cpu, CLIENTS,
                                                                        SECONDS, WARMUP, WINDOWS)
        else:
            notes.append("PostgreSQL did not answer on 127.0.0.1:5432; only SQLite was measured.")
        print("bare flask-smorest endpoint again...", flush=True)
        bare_after, bare_post_after = baselines.bare_endpoint(var_dir / "bare", server_cpu, CLIENTS, SECONDS,
                                                              WARMUP, WINDOWS)
    except BaseException:
        kept = True
        print(f"benchmark failed; server logs kept in {var_dir}", file=sys.stderr)
        raise
    finally:
        if not kept:
            shutil.rmtree(var_dir, ignore_errors=True)

    print(f"argon2id verify rate again ({VERIFY_SECONDS:.0f} s)...", flush=True)
    verify_after = _verify_rate(server_cpu, client_cpus)
    baseline = verify_before + verify_after
    bare, bare_post = bare_before + bare_after, bare_post_before + bare_post_after
    notes.append(f"The bare endpoint's figures add up a run before the identity servers "
                 f"({bare_before.rate_per_cpu_second:,.0f} GETs per worker CPU-second) and one after them "
                 f"({bare_after.rate_per_cpu_second:,.0f}), as the argon2id baseline does.")
    notes.append(f"The argon2id baseline is the mean of {verify_before.rate_per_cpu_second:.1f} verifications per "
                 f"CPU-second before the servers ran and {verify_after.rate_per_cpu_second:.1f} after them; the "
                 f"difference is how much the machine's speed drifted during the run.")
    # The event path is no ratio against the baseline: it runs after it, every process on every core.
    os.sched_setaffinity(0, all_cpus)
    print("event path: sign-up to mail through RabbitMQ (about a minute)...", flush=True)
    events_dir = Path(tempfile.mkdtemp(prefix="threshold-bench-events-"))
    kept = False
    try:
        events = event_path.run(events_dir)
    except BaseException:
        kept = True
        print(f"event-path benchmark failed; process logs kept in {events_dir}", file=sys.stderr)
        raise
    finally:
        if not kept:
            shutil.rmtree(events_dir, ignore_errors=True)
    if isinstance(events, event_path.Figures) and (events.latency.missing or events.throughput.missing):
        print(f"event path: {events.latency.missing} sign-up mail(s) and {events.throughput.missing} queued "
              f"mail(s) never reached the SMTP sink", file=sys.stderr)

    busy = max(host.load_average, os.getloadavg()[0])
    if busy > host.cores / 2:
        notes.append(f"Other processes shared the machine (1-minute load average {host.load_average:.2f} before the "
                     f"run, {os.getloadavg()[0]:.2f} after it, on {host.cores} cores). Wall-clock figures then drop "
                     f"and even per-CPU figures move by 10-30% between runs; rerun on a quiet machine to compare.")
    print()
    floors = report.Floors(bare_post, refresh_floors, {backend: baselines.stack_rss_mb(postgres=backend == "PostgreSQL")
                                                       for backend in figures}, baselines.argon2_block_mb())
    print(report.summary(baseline, bare, figures, events, floors))
    for note in notes:
        print(f"- {note}")
    path = report.write(report.document(host, baseline, bare, figures, settings, time.monotonic() - started, notes,
                                        events, floors))
    print(f"\nwritten to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
