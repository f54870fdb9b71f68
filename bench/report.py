"""The machine a run happened on, and the figures as tables: printed, and written to docs/performance.md."""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench import event_path
from bench.baselines import VerifyRate
from bench.identity import Figures
from bench.servers import Phase

DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
SIGN_IN_TARGET = 0.9
REQUEST_TARGET = 0.5
RSS_TARGET_MB = 80
FLOOR_NOISE = 0.05  # how far apart a floor and a target must be for one run to tell them apart


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


@dataclass(frozen=True)
class Ratio:
    name: str
    wall: float  # from requests per second of wall clock
    per_cpu: float  # from requests per second of worker CPU
    target: str
    met: bool


def ratios(baseline: VerifyRate, bare: Phase, figures: Figures) -> list[Ratio]:
    sign_in = figures.sign_in.rate_per_cpu_second / baseline.rate_per_cpu_second
    result = [Ratio("sign-in / argon2id verify", figures.sign_in.result.rate / baseline.rate, sign_in,
                    f">= {SIGN_IN_TARGET}", sign_in >= SIGN_IN_TARGET)]
    for name, phase in (("refresh / bare endpoint", figures.refresh), ("GET /v1/me / bare endpoint", figures.me)):
        per_cpu = phase.rate_per_cpu_second / bare.rate_per_cpu_second
        result.append(Ratio(name, phase.result.rate / bare.result.rate, per_cpu, f">= {REQUEST_TARGET}",
                            per_cpu >= REQUEST_TARGET))
    return result


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _phase_row(name: str, phase: Phase) -> list[str]:
    result = phase.result
    return [name, f"{result.rate:,.1f}", f"{phase.worker_cpu:.2f}", f"{phase.rate_per_cpu_second:,.1f}",
            f"{result.percentile(0.5) * 1000:.1f} / {result.percentile(0.95) * 1000:.1f}", f"{result.client_cpu:.2f}",
            f"{result.requests:,}", f"{result.errors}" + (f" ({result.first_error})" if result.first_error else "")
            + (f", {phase.restarts} worker restart(s)" if phase.restarts else "")]


def throughput_table(baseline: VerifyRate, bare: Phase, figures: dict[str, Figures]) -> str:
    header = ["Measure", "Per second", "Worker CPU (cores)", "Per worker CPU-second", "p50 / p95 ms",
              "Client CPU (cores)", "Requests", "Errors"]
    rows = [["argon2id verify, one process, one core", f"{baseline.rate:,.1f}", "1 (in-process)",
             f"{baseline.rate_per_cpu_second:,.1f}", "", "", f"{baseline.calls:,}", ""],
            _phase_row("bare flask-smorest GET", bare)]
    for backend, result in figures.items():
        rows += [_phase_row(f"{backend}: POST /v1/sessions (sign-in)", result.sign_in),
                 _phase_row(f"{backend}: POST /v1/tokens/refresh", result.refresh),
                 _phase_row(f"{backend}: GET /v1/me", result.me)]
    return _table(header, rows)


def ratio_table(baseline: VerifyRate, bare: Phase, figures: dict[str, Figures]) -> str:
    rows = []
    for backend, result in figures.items():
        for ratio in ratios(baseline, bare, result):
            rows.append([f"{backend}: {ratio.name}", f"{ratio.per_cpu:.2f}", f"{ratio.wall:.2f}", ratio.target,
                         "yes" if ratio.met else "**no**"])
        rss = result.peak_rss_mb
        rows.append([f"{backend}: peak RSS per worker (MB)", f"{rss:.1f} ({rss / bare.peak_rss_mb:.1f}x bare)", "",
                     f"< {RSS_TARGET_MB}", "yes" if rss < RSS_TARGET_MB else "**no**"])
    return _table(["Ratio", "Per worker CPU-second (judged)", "Wall clock", "Target", "Met"], rows)


@dataclass(frozen=True)
class Floors:
    """Measured in the same run, not judged: what the framework and the chosen libraries cost by themselves."""

    bare_post: Phase  # the bare endpoint, POST with a refresh-sized JSON body
    refresh: dict[str, Phase]  # backend -> bench/rotation_floor.py: a rotation with the stack alone
    stack_rss_mb: dict[str, float]  # backend -> VmRSS with the stack's libraries imported, nothing of ours
    argon2_mb: float  # argon2id's working block


def floor_table(bare: Phase, figures: dict[str, Figures], floors: Floors) -> str:
    post_ms = 1000 / floors.bare_post.rate_per_cpu_second
    rows = [["bare flask-smorest POST, one-field JSON body (the floor under a refresh)",
             f"{post_ms:.2f} ms of worker CPU, {floors.bare_post.rate_per_cpu_second / bare.rate_per_cpu_second:.2f}x "
             f"the GET's rate"]]
    for backend, result in figures.items():
        rows.append([f"{backend}: refresh / bare POST",
                     f"{result.refresh.rate_per_cpu_second / floors.bare_post.rate_per_cpu_second:.2f}"])
    for backend, floor in floors.refresh.items():
        label = f"{backend}: refresh floor (bench/rotation_floor.py: the stack alone doing a rotation)"
        counted = f"{floor.result.requests:,} requests, {floor.result.errors:,} errors"
        if not floor.rate_per_cpu_second:
            rows.append([label, f"not measured ({counted}; first error: {floor.result.first_error or '-'})"])
            continue
        rows.append([label, f"{1000 / floor.rate_per_cpu_second:.2f} ms of worker CPU, "
                            f"{floor.rate_per_cpu_second / bare.rate_per_cpu_second:.2f}x the GET's rate ({counted})"])
        rows.append([f"{backend}: refresh / refresh floor",
                     f"{figures[backend].refresh.rate_per_cpu_second / floor.rate_per_cpu_second:.2f}"])
    for backend, stack in floors.stack_rss_mb.items():
        rows.append([f"{backend}: the stack's libraries imported, nothing of Threshold's, + argon2id's "
                     f"{floors.argon2_mb:.0f} MiB block", f"{stack:.1f} + {floors.argon2_mb:.1f} = "
                                                          f"{stack + floors.argon2_mb:.1f} MB (RSS floor)"])
    return _table(["Informational (not judged)", "Measured"], rows)


def memory_table(bare: Phase, figures: dict[str, Figures]) -> str:
    rows = [["bare flask-smorest", "", f"{bare.peak_rss_mb:.1f}", ""]]
    rows += [[f"identity on {backend}", f"{result.boot_rss_mb:.1f}", f"{result.peak_rss_mb:.1f}",
              f"{result.rss_mb:.1f}"] for backend, result in figures.items()]
    return _table(["Worker", "VmHWM when ready (MB)", "VmHWM after the load (MB)", "VmRSS after the load (MB)"], rows)


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


def _median(values: list[float]) -> str:
    return f"{event_path.percentile(values, 0.5) * 1000:,.0f} ms" if values else "- ms"


def event_section(events: EventPath) -> str:
    if events is None:
        return "## Event path\n\nNot run.\n"
    if isinstance(events, event_path.Skipped):
        return (f"## Event path\n\nNot measured in this run: {events.reason}. It needs RabbitMQ on 127.0.0.1:5672 "
                f"and `rabbitmqctl`.\n")
    latency, throughput = events.latency, events.throughput
    verdict = "**met**" if latency.met else "**not met**"
    busy = latency.rate / throughput.steady_rate if throughput.steady_rate else float("inf")
    per_mail = throughput.consumer_cpu * 1000 / max(throughput.arrived, 1)
    identity_cores = next((cores for name, cores in latency.cpu.items() if name.startswith("identity")), 0.0)
    identity_ms = identity_cores * latency.window * 1000 / max(latency.sent, 1)
    return f"""## Event path

Target: a sign-up's verification mail at the SMTP server within 1 s at the 99th percentile, at
{latency.rate:g} sign-ups per second, through RabbitMQ: {verdict} in this run.

{event_target_table(events)}

{event_latency_table(events)}

{event_load_table(events)}

Where the time goes:

- The median sign-up was answered after {_median(latency.answered)}; the relay marked its event sent
  {_median(latency.stage("published", "answered"))} later, and its mail reached the sink
  {_median(latency.stage("mailed", "published"))} after that (medians of each sign-up's own steps).
- One consumer mailed {throughput.steady_rate:.1f} per second in the throughput run, so at {latency.rate:g} sign-ups
  per second it is busy {busy:.0%} of the time. The queue in front of it grows without bound at 100%,
  and its waits grow steeply well before that.
- The consumer handles one message at a time: a lookup in its deliveries table, rendering, a new SMTP
  connection (EHLO, MAIL, RCPT, DATA, QUIT) for every mail, a delivery row committed, the ack. It used
  {per_mail:.1f} ms of CPU per mail (start-up included). `ssl.create_default_context()` costs
  {events.ssl_context_ms:.1f} ms (it loads the system's CA certificates), which is why `SmtpSender`
  (`services/notifier/senders.py`) makes one per sender, and only for `smtps://` and `smtp+starttls://`.
- Identity's workers used {identity_ms:.1f} ms of CPU per sign-up (an argon2id hash, about one
  verify's cost above, and the account, token and outbox rows in one transaction); two sync workers
  take two sign-ups at a time and the rest wait in the listen queue.
- Every process here shares the machine's cores with PostgreSQL, RabbitMQ and anything else running
  (load average above). "Waiting for a free core" is the time a process was ready to run but no core
  was free (`/proc/<pid>/task/*/schedstat`); where it is as large as the CPU column, the latency is
  the machine's, not the code's.
- The SMTP sink is local: aiosmtpd on 127.0.0.1, in the benchmark process, accepting every mail at
  once. A real SMTP server adds a network round trip per command, TLS and its own queueing to every
  mail, so a notifier against one mails fewer per second and later than here.

How it was measured:

- A RabbitMQ virtual host of the run's own (`rabbitmqctl add_vhost`, permissions for guest, deleted
  afterwards), the exchanges and the notifier's queues declared first (`shared.bus.declare_topology`).
- Identity: `python -m services.identity serve` (gunicorn with `deploy/gunicorn.conf.py`,
  `WEB_CONCURRENCY=2`, `IP_RATE_LIMIT_PER_MINUTE` raised) on {latency.backend}, and
  `python -m services.identity relay` (on PostgreSQL it wakes on the NOTIFY sent at commit; on
  SQLite it polls every 0.1 s). One `python -m services.notifier consume` (its own SQLite
  database, prefetch 10) with `SMTP_URL` at the sink. Every process in its own process group,
  `PROMETHEUS_MULTIPROC_DIR` set as `make run` does, none pinned to a core.
- {event_path.WARMUP_SIGN_UPS} warm-up sign-ups first, each waited for at the sink. Then {latency.sent} sign-ups
  at {latency.rate:g} per second from {latency.clients} client threads, open loop: request i is due at
  start + i / {latency.rate:g} s whatever became of the earlier ones, and leaves late only when every
  thread is still waiting for an answer (the "scheduled moment" row counts that wait too). Each to a
  new address. Latency is the mail's arrival at the sink (the end of SMTP DATA) minus the moment the
  request was sent, both `time.monotonic()` in the benchmark process. A sign-up whose mail has not
  arrived {event_path.MAIL_TIMEOUT:.0f} s after the last request counts as missing; the target is met only
  with no sign-up failed, no mail missing and at least 95% of the scheduled rate sent.
- "Event marked sent" is the outbox row's `sent_at`, written by the relay once the broker has
  confirmed the batch (the mail can reach the sink before that).
- Throughput: with the consumer stopped, {throughput.events} verification events (CloudEvents envelopes
  from `shared.events.Event`) published straight to `threshold.events`; then one consumer started.
  Mails per second are the mails over the time from starting the consumer process (Python start-up
  and imports included) to the last mail at the sink, and between the first and the last mail.
"""


def summary(baseline: VerifyRate, bare: Phase, figures: dict[str, Figures], events: EventPath = None,
            floors: Floors | None = None) -> str:
    parts = [throughput_table(baseline, bare, figures), ratio_table(baseline, bare, figures),
             memory_table(bare, figures)]
    if floors is not None:
        parts.append(floor_table(bare, figures, floors))
    return "\n\n".join(parts + [event_summary(events)])


def _overheads(baseline: VerifyRate, bare: Phase, figures: dict[str, Figures]) -> str:
    verify_ms = 1000 / baseline.rate_per_cpu_second
    bare_ms = 1000 / bare.rate_per_cpu_second
    lines = [f"- One argon2id verify costs {verify_ms:.1f} ms of CPU; one bare flask-smorest request "
             f"{bare_ms:.2f} ms of worker CPU (gunicorn, Flask, flask-smorest, one new TCP connection)."]
    for backend, result in figures.items():
        sign_in_ms = 1000 / result.sign_in.rate_per_cpu_second
        lines.append(
            f"- {backend}: a sign-in costs {sign_in_ms:.1f} ms of worker CPU, so {sign_in_ms - verify_ms:.1f} ms "
            f"besides the hash; a refresh {1000 / result.refresh.rate_per_cpu_second:.2f} ms and GET /v1/me "
            f"{1000 / result.me.rate_per_cpu_second:.2f} ms, against {bare_ms:.2f} ms for the bare endpoint.")
    return "\n".join(lines)


def _memory_note(figures: dict[str, Figures], floors: Floors | None) -> str:
    text = ("- Memory: a worker imports Flask, SQLAlchemy, cryptography, python-jose and the rest before its first "
            "request (the \"when ready\" column), each worker for itself; argon2id allocates its 19 MiB working "
            "block on the first hash, which the peak keeps. `requests` is imported only when OpenID providers "
            "are configured and `qrcode` on the first enrolment.")
    if floors is None:
        return text
    parts = []
    for backend, stack in floors.stack_rss_mb.items():
        floor = stack + floors.argon2_mb
        peak = figures[backend].peak_rss_mb
        verdict = "above" if floor >= RSS_TARGET_MB else "below"
        parts.append(f"on {backend} the stack's libraries alone, with nothing of Threshold's, plus that block come "
                     f"to {floor:.1f} MB, {verdict} the {RSS_TARGET_MB} MB target, and identity's own modules, its "
                     f"OpenAPI document and a request's working memory add {peak - floor:.1f} MB")
    return text + "\n  In this run " + "; ".join(parts) + "."


def _refresh_note(bare: Phase, floors: Floors | None) -> str:
    if floors is None or not floors.refresh:
        return ""
    parts = []
    for backend, floor in floors.refresh.items():
        if not floor.rate_per_cpu_second:
            parts.append(f"on {backend} it was not measured")
            continue
        ratio = round(floor.rate_per_cpu_second / bare.rate_per_cpu_second, 2)
        if abs(ratio - REQUEST_TARGET) <= FLOOR_NOISE:
            verdict = "about at the target, within the run-to-run noise"
        else:
            verdict = "under the target" if ratio < REQUEST_TARGET else "over the target"
        parts.append(f"on {backend} it reached {ratio:.2f}x the bare GET's rate, {verdict} of {REQUEST_TARGET}")
    return ("\n  The refresh floor (`bench/rotation_floor.py`) is the stack doing a rotation with nothing of "
            "Threshold's request path (only identity's engine settings): the same body, the two statements on "
            "the DB-API cursor of a pooled connection, the same ES256 signature through python-jose. In this "
            "run " + "; ".join(parts) + ".")


def document(host: Machine, baseline: VerifyRate, bare: Phase, figures: dict[str, Figures], settings: dict,
             elapsed: float, notes: list[str], events: EventPath = None, floors: Floors | None = None) -> str:
    backends = " and ".join(figures)
    floor_section = f"\n{floor_table(bare, figures, floors)}\n" if floors is not None else ""
    memory_note = _memory_note(figures, floors)
    refresh_note = _refresh_note(bare, floors)
    return f"""# Performance

Measured by `python -m bench` on {host.date}, in {elapsed:.0f} s. Every figure below comes from that one
run; run it again to refresh this page (it is rewritten each time).

## Machine

| | |
|---|---|
| CPU | {host.cpu} (model name in /proc/cpuinfo) |
| Cores | {host.cores} |
| Python | {host.python} |
| Kernel | Linux {host.kernel} |
| Libraries | {host.versions} |
| Load average before the run | {host.load_average:.2f} |
| Date | {host.date} |

## Results ({backends})

Throughput, one gunicorn sync worker on its own core, {settings['clients']} client threads on the other:

{throughput_table(baseline, bare, figures)}

Ratios, each against a baseline measured in the same run:

{ratio_table(baseline, bare, figures)}

Memory of a worker (`VmHWM` is the peak resident set since the process started, read from
`/proc/<worker pid>/status`):

{memory_table(bare, figures)}
{floor_section}
Where the time goes:

{_overheads(baseline, bare, figures)}
{"".join(f"- {note}{chr(10)}" for note in notes)}
## Why the figures are where they are

- Sign-in: besides the hash, a sign-in runs five statements: the per-IP limit (one upsert on the
  autocommit engine, committed by itself), the block check and the account read (single SELECTs on
  the autocommit engine), then one transaction with the session and refresh-token inserts; and it
  signs an ES256 token. On SQLite that is two WAL commits, on PostgreSQL seven round trips.
  argon2id also sweeps 19 MiB through the CPU caches on every call, so all that runs after it, the
  inserts, the signature, the response, starts with cold caches.
- Refresh: a POST with a JSON body (the framework's floor for that is the informational row above),
  two precompiled statements on the autocommit engine (the token, its session, its account and any
  successor in one joined SELECT; the INSERT of the next token, which a unique index lets in once),
  so one WAL commit on SQLite and two round trips on PostgreSQL, and an ES256 signature through
  python-jose. The framework's POST floor alone takes most of the budget the 0.5 target leaves
  (refresh against that floor is in the informational rows).{refresh_note}
- GET /v1/me: the access token is verified once per worker and then remembered (docs/security.md),
  so a request costs the framework, the request middleware, and one precompiled SELECT on the
  autocommit engine.
- The bare endpoint is the framework floor (gunicorn, Flask routing, flask-smorest serialisation).
  Everything identity adds runs colder than in a tight loop: between two requests gunicorn's own
  code and the kernel's network stack pass through the same core.
{memory_note}
- gunicorn's sync worker closes the connection after each response and then waits (up to 2 s) for
  the client to close its side before it accepts the next connection. Against a fast client that
  costs little; it is why the worker CPU column stays below 1.00 even with several clients queued,
  and why identity must sit behind a buffering reverse proxy in production.

## What the ratios mean

- **sign-in / argon2id verify**: a sign-in hashes the password once with argon2id (m=19 MiB, t=2, p=1),
  which is meant to be slow; the baseline is `passwords.HASHER.verify` called in a loop in one
  process on one core. A ratio of 1.0 would mean everything else a sign-in does (HTTP, JSON,
  the per-IP limit and the failure throttle in the database, the account lookup, the session and
  refresh-token rows, ES256 signing) costs nothing; the target of 0.9 allows
  that work a tenth of the hash. Sign-ins per second per worker are bounded by the verify rate of one
  core; to sign in more people per second, add cores (workers), not threads.
- **refresh (and GET /v1/me) / bare endpoint**: the baseline is `bench/bare_app.py`, one flask-smorest
  GET returning a small JSON document, served by the same `deploy/gunicorn.conf.py` (sync worker,
  access log on). The ratio is the share of a worker's request capacity left once identity does its
  real work: a refresh reads the token, session and account rows, inserts the next token (which
  retires the one presented) and signs a new access token (ES256); GET /v1/me verifies the JWT (the first time a worker
  sees it; the verdict is then remembered) and reads the account. Every client thread reuses its own
  access token, as a signed-in client does for the token's 15 minutes. The target of 0.5 means the
  service's own work may cost at most as much as the framework floor. The informational POST row is
  the same bare resource reading a refresh-sized JSON body: what the framework alone spends on a
  request like a refresh. The refresh floor row goes further: `bench/rotation_floor.py` does a whole
  rotation with the chosen libraries and nothing of Threshold's request path (the body, the joined
  SELECT and the INSERT on the DB-API cursor, the ES256 signature, the JSON pair). A refresh of
  identity's design can at best match it on this stack (within the run-to-run noise), so where the
  floor stays under 0.5 run after run, the target is out of reach without another design or another
  stack.
- **peak RSS per worker**: memory each extra worker costs; argon2id alone needs 19 MiB while it hashes.
  The informational floor is a fresh interpreter's VmRSS once the libraries a sign-in worker cannot do
  without are imported (`bench/baselines.py`, `STACK`), plus that block.

"Per worker CPU-second" divides the requests answered by the CPU time the gunicorn workers used
in the window (`utime + stime` from `/proc/<pid>/stat`, plus the master's reaped children). It is what
one worker with a core to itself would answer per second, and it does not move when something else on
the machine takes CPU from the worker or when the load driver cannot keep it busy; the targets are
judged on it. "Wall clock" is requests divided by elapsed time; the two agree when the worker CPU
column is close to 1.00. On PostgreSQL the worker also waits for the database server, which runs on the
same two cores: there the wall-clock figure is the one that counts for latency, and the per-CPU figure
says how much the worker itself spends.

## How it was measured

- `python -m services.identity migrate`, then `python -m services.identity serve` (real gunicorn with
  `deploy/gunicorn.conf.py`) with `WEB_CONCURRENCY=1`, a fresh `VAR_DIR`, the default SQLite database
  (and, when PostgreSQL answers on 127.0.0.1:5432, a throwaway database created for the run and dropped
  after it), `IP_RATE_LIMIT_PER_MINUTE` raised so one client address is not limited.
- {settings['accounts']} accounts are signed up through `POST /v1/accounts` and verified with
  `POST /v1/email-verifications/confirm`, the token taken from the verification event in the outbox.
  Each client thread signs in its own accounts in turn, so no account is hit twice in a row (only
  failures are throttled per account, and there are none).
- Load: {settings['clients']} threads in the benchmark process, each with its own `http.client`
  connection to 127.0.0.1. gunicorn's sync worker closes the connection after every response, so each
  request also opens a loopback TCP connection (as it would behind a proxy that does not pool).
  Each load has {settings['warmup']:.0f} s of warm-up that is discarded, then a measured stretch of
  {settings['sign_in_seconds']:.0f} s for sign-in and {settings['seconds']:.0f} s for the others, run as
  {settings.get('windows', 1)} consecutive windows; the figures are those of the window with the most
  requests per worker CPU-second, the one least disturbed by other work on the machine (the
  baselines are taken the same way: their best window). Only requests completing inside a window
  count; any other answer than the expected 2xx is an error.
- Fairness on two cores: the gunicorn master and worker are pinned to one core
  (`sched_setaffinity`), the load driver to the other; the argon2id baseline runs on the workers' core
  before the first server starts and again after the last one stops, and the bare endpoint is
  measured before the identity servers and again after them (each baseline is the sum of its two runs).
  The client's own CPU use is in the "Client CPU" column: while it stays
  well under 1.00 the driver is not the bottleneck. Anything else running on the machine (the load
  average above) still shares the cores, which is one more reason the targets are judged per worker
  CPU-second. With several workers the figures scale with cores, not with workers per core.
- Latency percentiles include queueing: {settings['clients']} clients wait on one sync worker.

{event_section(events)}
## How to reproduce

```
make bench                 # or: .venv/bin/python -m bench
```

It needs nothing but the project's virtualenv, takes about three minutes on two cores, listens
on 127.0.0.1 only and stops every process it started (also on Ctrl-C, SIGTERM or an error). It uses
PostgreSQL too when 127.0.0.1:5432 answers (`BENCH_POSTGRES_URL`, default
`postgresql://postgres@127.0.0.1:5432/test`, must be allowed to create databases), and measures the
event path when RabbitMQ answers on 127.0.0.1:5672 and `rabbitmqctl` may add a virtual host (guest
must exist); without them that section says it was not measured. The code is in `bench/`: `load.py`
(HTTP load driver), `servers.py` (start/stop gunicorn, worker CPU and memory), `baselines.py`
(argon2id, the bare endpoint and the refresh floor), `bare_app.py`, `rotation_floor.py`, `identity.py`
(the identity scenarios),
`event_path.py` (sign-up to mail through RabbitMQ), `smtp.py` (the SMTP sink), `report.py` (this page).
"""


def write(text: str) -> Path:
    DOC.write_text(text)
    return DOC
