"""The figures of a run as tables: printed, and written to docs/performance.md. Every figure comes from
the run; the prose is only what a reader needs to read the tables."""
from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from string import Template

from bench import compare, event_path
from bench.ab import Comparison

DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
PAGE = Path(__file__).with_name("performance_page.md")  # the page's fixed prose, with $placeholders
DEFAULT_WORKER = compare.KEEP  # gunicorn's gthread worker: what `serve` runs unless GUNICORN_WORKER_CLASS says
USS_TARGET_MB = 40
TENANCY_TARGET = 0.5  # the switcher and the workspace home page against the bare endpoint
RUN_PSS_TARGET_MB = 450
KEYCLOAK_REFRESHES = 120  # per second per vCPU, Keycloak's published sizing (keycloak.org, "Concepts for sizing CPU
# and memory resources"): 120 refresh-token requests per second per vCPU


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    python: str
    date: str
    kernel: str
    load_average: float  # 1-minute load average before the run: other work sharing the cores
    versions: str


def machine() -> Machine:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("gunicorn", "Flask", "flask-smorest",
                                                                           "SQLAlchemy", "argon2-cffi", "psycopg"))
    return Machine(cpu, os.cpu_count() or 1, platform.python_version(),
                   datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), platform.release(), os.getloadavg()[0],
                   versions)


@dataclass
class Run:
    host: Machine
    settings: compare.Settings
    short: bool
    seconds: float  # the whole run's wall clock
    results: list[compare.Result]
    unavailable: dict[str, str]  # peer -> why it was not measured
    footprint: dict | str  # bench/footprint.py's figures, or why not measured
    tenancy: dict | str  # bench/tenancy.py's figures, or why not measured
    events: event_path.Figures | event_path.Skipped | None
    notes: list[str] = field(default_factory=list)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _find(run: Run, backend: str, operation: str) -> Comparison | None:
    for result in run.results:
        if result.backend == backend:
            return next((c for c in result.comparisons if c.operation == operation), None)
    return None


def _per_cpu(run: Run, operation: str, side: str) -> dict[str, float]:
    """backend -> the median of the side's windows, requests per server CPU-second."""
    found = {}
    for result in run.results:
        comparison = _find(run, result.backend, operation)
        if comparison is not None and side in comparison.windows:
            found[result.backend] = comparison.median_per_cpu(side)
    return found


def _spread(values: dict[str, float], unit: str, digits: int = 0) -> str:
    if not values:
        return "not measured"
    return ", ".join(f"{value:,.{digits}f} {unit} on {backend}" for backend, value in values.items())


def sizing(run: Run) -> str:
    """The five lines an operator sizes a deployment from, for the default worker class."""
    memory = {result.backend: result.memory[DEFAULT_WORKER] for result in run.results
              if DEFAULT_WORKER in result.memory}
    mails = (f"{run.events.throughput.steady_rate:.0f} mails per second per notifier consumer (first to last mail; "
             f"{run.events.throughput.rate:.0f} counting its start-up)" if isinstance(run.events, event_path.Figures)
             else "mails per second per notifier consumer: not measured")
    return "\n".join([
        f"- {_spread(_per_cpu(run, 'sign-in', DEFAULT_WORKER), 'sign-ins')} per second per worker core",
        f"- {_spread(_per_cpu(run, 'refresh with rotation', DEFAULT_WORKER), 'refreshes')} per second per worker core "
        f"(Keycloak publishes {KEYCLOAK_REFRESHES} per vCPU)",
        f"- {_spread(_per_cpu(run, 'read', DEFAULT_WORKER), 'reads (GET /v1/me)')} per second per worker core",
        "- memory per worker: " + (", ".join(f"{m.uss_mb:.0f} MB unique (USS), {m.pss_mb:.0f} MB PSS on {backend}"
                                           for backend, m in memory.items()) or "not measured"),
        f"- {mails}",
    ])


def _ratios(run: Run, judged: bool):
    """(comparison, ratio, [operation, numerator, denominator] cells, per-round values) of every ratio with a
    target (`judged`) or without one (a floor against a peer)."""
    for result in run.results:
        for comparison in result.comparisons:
            whats = {side.name: side.what for side in comparison.sides}
            for ratio in comparison.ratios:
                if (ratio.target is not None) == judged:
                    yield comparison, ratio, [f"{result.backend}: {comparison.operation}",
                                              f"{ratio.numerator}: {whats[ratio.numerator]}",
                                              f"{ratio.denominator}: {whats[ratio.denominator]}"
                                              ], comparison.per_round(ratio)


def _ratio_rows(run: Run) -> list[list[str]]:
    rows = []
    for _comparison, ratio, cells, values in _ratios(run, judged=True):
        median = statistics.median(values)
        rows.append([*cells, " ".join(f"{value:.2f}" for value in values), f"**{median:.2f}**",
                     f">= {ratio.target:g}", "yes" if median >= ratio.target else "**no**"])
    if isinstance(run.tenancy, dict):
        for key, label, what in (("tenancy", "workspace switcher", "tenancy: GET /v1/workspaces"),
                                 ("web", "workspace home page", "web: GET /w/<id>, signed in")):
            median = run.tenancy[f"{key}_ratio"]
            rows.append([f"SQLite: {label}", what, "bare: GET /v1/ping (bench/bare_app.py)",
                         " ".join(f"{row[f'{key}_ratio']:.2f}" for row in run.tenancy["rounds"]), f"**{median:.2f}**",
                         f">= {TENANCY_TARGET:g}", "yes" if median >= TENANCY_TARGET else "**no**"])
    return rows


def ratio_table(run: Run) -> str:
    return _table(["Operation", "Threshold", "Against", "Ratio per round", "Median", "Target", "Met"],
                  _ratio_rows(run))


def floor_table(run: Run) -> str:
    """The ratios judged against no target: each floor (bench/floor.py, bench/page_floor.py) against the peer or
    the bare endpoint, per server CPU-second."""
    rows = [[*cells, f"{comparison.median_per_cpu(ratio.numerator):,.0f} / "
                     f"{comparison.median_per_cpu(ratio.denominator):,.0f}",
             " ".join(f"{value:.2f}" for value in values), f"**{statistics.median(values):.2f}**"]
            for comparison, ratio, cells, values in _ratios(run, judged=False)]
    if isinstance(run.tenancy, dict) and "floor_ratio" in run.tenancy:
        rounds = run.tenancy["rounds"]
        rows.append(["SQLite: workspace home page", "page floor: bench/page_floor.py GET /w/<id>, signed in",
                     "bare: GET /v1/ping (bench/bare_app.py)",
                     f"{statistics.median(row['floor']['per_cpu_second'] for row in rounds):,.0f} / "
                     f"{statistics.median(row['bare']['per_cpu_second'] for row in rounds):,.0f}",
                     " ".join(f"{row['floor_ratio']:.2f}" for row in rounds), f"**{run.tenancy['floor_ratio']:.2f}**"])
    if not rows:
        return "No floor was measured against a peer."
    return _table(["Operation", "Floor", "Against", "Per server CPU-second (medians)", "Ratio per round", "Median"],
                  rows)


def absolute_table(run: Run) -> str:
    rows = []
    for result in run.results:
        for comparison in result.comparisons:
            for side in comparison.sides:
                windows = comparison.windows[side.name]
                errors = sum(w.errors for w in windows)
                first = next((w.first_error for w in windows if w.first_error), "")
                rows.append([f"{result.backend}: {comparison.operation}", f"{side.name}: {side.what}",
                             " ".join(f"{w.per_cpu:,.0f}" for w in windows),
                             " ".join(f"{w.rate:,.0f}" for w in windows),
                             " ".join(f"{w.cpu_seconds / w.seconds:.2f}" for w in windows),
                             f"{sum(w.requests for w in windows):,}",
                             f"{errors}" + (f" ({first[:80]})" if first else "")])
    return _table(["Operation", "Server", "Per server CPU-second, each round", "Per second (wall)",
                   "Server CPU (cores)", "Requests", "Errors"], rows)


def memory_table(run: Run) -> str:
    rows = []
    for result in run.results:
        for name, m in result.memory.items():
            what = "one worker" if name.startswith("Threshold") else "the whole process tree"
            target = (("yes" if m.uss_mb <= USS_TARGET_MB else "**no**") if name in (compare.SYNC, compare.KEEP)
                      else "")
            rows.append([f"{result.backend}: {name} ({what})", f"{m.uss_mb:.1f}", f"{m.pss_mb:.1f}",
                         f"{m.rss_mb:.1f}", target])
    return _table(["After the loads", "USS (MB)", "PSS (MB)", "RSS (MB)", f"USS <= {USS_TARGET_MB} MB"], rows)


def footprint_line(run: Run) -> str:
    if isinstance(run.footprint, str):
        return f"Total PSS of `make run`: not measured ({run.footprint})."
    total, count = run.footprint.get("total", 0.0), run.footprint.get("count", 0)
    met = "met" if total <= RUN_PSS_TARGET_MB else "**not met**"
    return (f"Total PSS of every process `make run` starts: {total:.0f} MB in {count} processes "
            f"(target <= {RUN_PSS_TARGET_MB} MB: {met}).")


def targets(run: Run) -> str:
    rows = _ratio_rows(run)
    met = [row for row in rows if row[-1] == "yes"]
    missed = [f"{row[0]}, {row[1].split(':')[0]} / {row[2].split(':')[0]} ({row[4].strip('*')})"
              for row in rows if row[-1] != "yes"]
    lines = [f"- Ratios: {len(met)} of {len(rows)} met." + (" Not met: " + "; ".join(missed) + "." if missed else "")]
    for result in run.results:
        for name in (compare.SYNC, compare.KEEP):
            if name in result.memory:
                uss = result.memory[name].uss_mb
                lines.append(f"- USS per worker on {result.backend}: {uss:.1f} MB ({name}), target <= "
                             f"{USS_TARGET_MB} MB: " + ("met." if uss <= USS_TARGET_MB else "**not met**."))
    lines.append(f"- {footprint_line(run)}")
    if isinstance(run.tenancy, str):
        lines.append(f"- Workspace switcher and home page: not measured ({run.tenancy}).")
    if isinstance(run.events, event_path.Figures):
        verdict = "met." if run.events.latency.met else "**not met**."
        lines.append(f"- Event path, p99 sign-up to mail < {event_path.LATENCY_TARGET:g} s at "
                     f"{run.events.latency.rate:g} sign-ups/s: {verdict}")
    for peer, reason in run.unavailable.items():
        lines.append(f"- {peer} peer unavailable: {reason}")
    return "\n".join(lines)


EventPath = event_path.Figures | event_path.Skipped | None


def _ms(values: list[float]) -> list[str]:
    return [f"{event_path.percentile(values, fraction) * 1000:,.0f}" if values else "-"
            for fraction in (0.5, 0.99, 1.0)]


def event_target_table(events: event_path.Figures) -> str:
    latency, throughput = events.latency, events.throughput
    measured = (f"{event_path.percentile(latency.mailed, 0.99):.2f} s with {latency.sent_rate:.1f} sign-ups/s sent, "
                f"{latency.missing} mail(s) missing, {latency.sent - latency.accepted} sign-up(s) failed")
    rows = [[f"p99 sign-up to mail < {event_path.LATENCY_TARGET:g} s at {latency.rate:g} sign-ups/s", measured,
             "yes" if latency.met else "**no**"],
            ["mails per second through one notifier", f"{throughput.rate:.1f} (consumer start to last mail)",
             "no target"]]
    return _table(["Target", "Measured", "Met"], rows)


def event_latency_table(events: event_path.Figures) -> str:
    latency = events.latency
    rows = [["request sent -> 201 answered", *_ms(latency.answered), f"{latency.accepted} of {latency.sent}"],
            ["request sent -> event marked sent by the relay", *_ms(latency.published), f"{len(latency.published)}"],
            ["**request sent -> mail at the SMTP sink** (judged)", *_ms(latency.mailed),
             f"{latency.arrived} of {latency.accepted}"],
            ["scheduled moment -> mail at the SMTP sink", *_ms(latency.since_scheduled), f"{latency.arrived}"],
            ["201 answered -> event marked sent", *_ms(latency.stage("published", "answered")), ""],
            ["event marked sent -> mail at the SMTP sink", *_ms(latency.stage("mailed", "published")), ""]]
    return _table([f"Sign-up to mail, identity on {latency.backend}", "p50 ms", "p99 ms", "max ms", "Count"], rows)


def event_load_table(events: event_path.Figures) -> str:
    latency, throughput = events.latency, events.throughput
    errors = f"{latency.sent - latency.accepted}" + (f" (first: {latency.first_error})" if latency.first_error else "")
    cpu = ", ".join(f"{name} {cores:.2f}" for name, cores in latency.cpu.items())
    mails = throughput.arrived
    seconds = throughput.seconds or float("inf")
    rows = [["Sign-ups sent", f"{latency.sent} over {latency.seconds:g} s: {latency.rate:g} per second scheduled, "
                              f"{latency.sent_rate:.1f} sent; the latest left {latency.max_late * 1000:,.0f} ms "
                              f"after its scheduled moment"],
            ["Sign-ups not answered 201", errors],
            ["Mails missing / duplicated (sign-ups)", f"{latency.missing} / {latency.duplicates}"],
            ["CPU (cores) from the first sign-up to the last mail", cpu],
            ["Waiting for a free core (cores) meanwhile", ", ".join(f"{name} {cores:.2f}"
                                                                   for name, cores in latency.waiting.items())],
            ["Events queued for the throughput run", f"{throughput.events}, published straight to threshold.events "
                                                     f"in {throughput.published_seconds:.2f} s (one connection, "
                                                     f"each publish waits for its confirm)"],
            ["Mails per second, one consumer, from its start to the last mail",
             f"{throughput.rate:.1f} ({mails} mails in {throughput.seconds:.2f} s, start-up included)"],
            ["Mails per second, one consumer, first to last mail", f"{throughput.steady_rate:.1f}"],
            ["Consumer CPU", f"{throughput.consumer_cpu:.2f} s, {throughput.consumer_cpu * 1000 / max(mails, 1):.1f} "
                             f"ms per mail (start-up included), {throughput.consumer_cpu / seconds:.2f} cores; "
                             f"{throughput.consumer_waiting:.2f} s waiting for a free core"],
            ["SMTP sink CPU (the benchmark process)", f"{throughput.sink_cpu:.2f} s, "
                                                      f"{throughput.sink_cpu / seconds:.2f} cores"],
            ["Mails missing / duplicated (throughput)", f"{throughput.missing} / {throughput.duplicates}"],
            ["ssl.create_default_context(), one call", f"{events.ssl_context_ms:.1f} ms of CPU"],
            ["RabbitMQ", events.rabbitmq or "unknown version"]]
    return _table(["Event path", "Measured"], rows)


def event_summary(events: EventPath) -> str:
    if events is None:
        return "Event path: not run."
    if isinstance(events, event_path.Skipped):
        return f"Event path: not measured ({events.reason})."
    return "\n\n".join([event_target_table(events), event_latency_table(events), event_load_table(events)])




def summary(run: Run) -> str:
    return "\n\n".join([sizing(run), ratio_table(run), floor_table(run), absolute_table(run), memory_table(run),
                        targets(run), event_summary(run.events)])


def document(run: Run) -> str:
    host, s = run.host, run.settings
    return Template(PAGE.read_text()).substitute(
        sizing=sizing(run), mode="short mode" if run.short else "full mode", minutes=f"{run.seconds / 60:.1f}",
        date=host.date, cpu=host.cpu, cores=host.cores, kernel=host.kernel, python=host.python,
        load_average=f"{host.load_average:.2f}", versions=host.versions,
        threads=os.environ.get("GUNICORN_THREADS", "4"), ratio_table=ratio_table(run), floor_table=floor_table(run),
        targets=targets(run), notes="".join(f"- {note}\n" for note in run.notes), absolute_table=absolute_table(run),
        memory_table=memory_table(run), footprint=footprint_line(run), events=event_summary(run.events),
        clients=s.clients, codes=f"{s.codes:,}", seconds=f"{s.seconds:g}", sign_in_seconds=f"{s.sign_in_seconds:g}",
        warmup=f"{s.warmup:g}", rounds=s.rounds)


def write(text: str, path: Path = DOC) -> Path:
    path.write_text(text)
    return path
