"""`python -m bench` (`make bench`): install the peers, run every comparison interleaved on SQLite and on
PostgreSQL, measure memory and the event path, print the tables and write docs/performance.md.
`python -m bench --short` runs every piece briefly (the test suite's run); it writes its page only where
`--output PATH` says."""
from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench import compare, databases, event_path, report
from bench.peers import fastapi_users_peer as fastapi_users
from support import ROOT
from support.databases import postgres_available

FULL = compare.Settings(clients=4, rounds=3, seconds=1.5, sign_in_seconds=2.5, warmup=0.3, codes=2400, warm_round=1.0)
SHORT = compare.Settings(clients=2, rounds=1, seconds=0.5, sign_in_seconds=0.8, warmup=0.1, codes=400, warm_round=0.2)
VAR = ROOT / "var"


def _stop_on_sigterm() -> None:
    # SIGTERM ends the run like Ctrl-C does, through the `finally` blocks that stop the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def _cores() -> tuple[int | None, set[int]]:
    """(the core for the servers, the cores for the load driver); no pinning on a single core."""
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[-1], set(cpus[:-1])) if len(cpus) > 1 else (None, set(cpus))


_STARTED = time.monotonic()


def say(text: str) -> None:
    """A progress line, with the seconds since the run began."""
    print(f"[{time.monotonic() - _STARTED:4.0f} s] {text}", flush=True)


def install_peers(var_dir: Path) -> compare.Peers:
    """Each peer into var/bench-peers/ (once; pinned); one that cannot be installed is said so and skipped."""
    peers = compare.Peers()
    try:
        peers.fastapi_users = fastapi_users.install(var_dir)
    except Exception as error:  # pip could not reach the registry, or a build failed: measure the rest
        peers.unavailable[compare.FASTAPI_USERS] = str(error)
        say(f"fastapi-users peer unavailable: {error}")
    try:
        from bench.peers import oidc_provider

        oidc_provider.install(var_dir)
        peers.oidc = oidc_provider.OidcProvider
    except Exception as error:  # not written yet, npm could not reach the registry, a build failed
        peers.unavailable[compare.OIDC_PROVIDER] = f"{type(error).__name__}: {error}"
        say(f"oidc-provider peer unavailable: {type(error).__name__}: {error}")
    return peers


def _footprint(workdir: Path, short: bool) -> dict | str:
    """The total PSS of every process `make run` starts (bench/footprint.py), or why it was not measured;
    the short run reads it once every service is ready, without waiting for sign-up mail."""
    try:
        from bench import footprint
    except ImportError as error:
        return f"bench/footprint.py is not here ({error})"
    try:
        return footprint.total_pss(workdir, sign_ups=0) if short else footprint.total_pss(workdir)
    except Exception as error:  # its own failure: said in the report
        return f"{type(error).__name__}: {error}"


def _tenancy(workdir: Path, cpu: int | None, settings: compare.Settings) -> dict | str:
    """bench/tenancy.py: the workspace switcher and the web home page against the bare endpoint."""
    try:
        from bench import tenancy
    except ImportError as error:
        return f"bench/tenancy.py is not here ({error})"
    try:
        return tenancy.run(workdir, cpu, settings.clients, settings.seconds, settings.warmup, settings.rounds)
    except Exception as error:  # its own failure: said in the report, the rest goes on
        return f"{type(error).__name__}: {error}"


def main(argv: list[str] | None = None) -> Path | None:
    argv = sys.argv[1:] if argv is None else argv
    short = "--short" in argv
    settings = SHORT if short else FULL
    _stop_on_sigterm()
    started = time.monotonic()
    host = report.machine()
    all_cpus = os.sched_getaffinity(0)
    server_cpu, client_cpus = _cores()
    say("installing the peers into var/bench-peers/ (once)...")
    peers = install_peers(VAR)
    os.sched_setaffinity(0, client_cpus)
    workdir = Path(tempfile.mkdtemp(prefix="threshold-bench-"))
    results: list[compare.Result] = []
    notes: list[str] = []
    kept = False
    try:
        sqlite = workdir / "sqlite"
        sqlite.mkdir()
        say("SQLite: identity, fastapi-users, oidc-provider, the floors, interleaved...")
        results.append(compare.run("SQLite", {name: f"sqlite:///{sqlite / name}.db" for name in (
            "identity", "floor", "fastapi-users")}, None, sqlite, server_cpu, peers, settings, say))
        if postgres_available():
            postgres = workdir / "postgres"
            postgres.mkdir()
            say("PostgreSQL: the same...")
            with ExitStack() as stack:
                urls = {name: stack.enter_context(databases.fresh_postgres(name.replace("-", "_")))
                        for name in ("identity", "floor", "fastapi-users")}
                oidc = "postgresql://" + stack.enter_context(databases.fresh_postgres("oidc")).split("://", 1)[1]
                results.append(compare.run("PostgreSQL", urls, oidc, postgres, server_cpu, peers, settings, say))
        else:
            notes.append("PostgreSQL did not answer on 127.0.0.1:5432; only SQLite was measured.")
        say("tenancy: the workspace switcher and the web home page against the bare endpoint...")
        tenancy = _tenancy(workdir / "tenancy", server_cpu, settings)
        os.sched_setaffinity(0, all_cpus)
        say("make run's footprint (total PSS)...")
        (workdir / "footprint").mkdir()
        footprint = _footprint(workdir / "footprint", short)
        say("event path: sign-up to mail, and mails per second through one consumer...")
        (workdir / "events").mkdir()
        events = (event_path.run(workdir / "events", seconds=2.0, events=40) if short
                  else event_path.run(workdir / "events"))
    except BaseException:
        kept = True
        print(f"benchmark failed; server logs kept in {workdir}", file=sys.stderr)
        raise
    finally:
        os.sched_setaffinity(0, all_cpus)
        if not kept:
            shutil.rmtree(workdir, ignore_errors=True)

    run = report.Run(host, settings, short, time.monotonic() - started, results, peers.unavailable, footprint,
                     tenancy, events, notes)
    say("done")
    print(report.summary(run))
    output = Path(argv[argv.index("--output") + 1]) if "--output" in argv else None if short else report.DOC
    if output is None:
        return None
    path = report.write(report.document(run), output)
    print(f"\nwritten to {path}")
    return path


if __name__ == "__main__":
    main()
