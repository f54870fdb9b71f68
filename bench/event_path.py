"""The event path under load: sign-up to mail at an SMTP server, through the outbox, the relay,
RabbitMQ and one notifier consumer, all real processes on loopback.

1. Latency: identity served by gunicorn (`python -m services.identity serve`, two workers), its
   relay (`python -m services.identity relay`) and one consumer (`python -m services.notifier
   consume`) against a RabbitMQ virtual host of the run's own; sign-ups sent at a fixed rate
   (open loop: each request leaves at its scheduled moment, whether or not earlier ones were
   answered), each to a new address. Latency is the mail's arrival at the SMTP sink minus the moment
   its sign-up request was sent. Every accepted sign-up must give one mail; a missing one is an error.
2. Throughput: with the consumer stopped, verification events are published straight to
   `threshold.events`; then one consumer starts, and the time from its start until the sink has
   every mail gives mails per second through one notifier.

Every process runs in its own process group and is stopped on the way out (also on Ctrl-C, SIGTERM
or an error); the virtual host and any PostgreSQL database are deleted then too.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from bench import databases, identity, load, servers
from support.databases import migrate, postgres_available
from support.outbox import Outbox
from support.ports import free_port
from support.processes import log_tail, python_module, spawn, stop_group
from support.rabbitmq import PORT as RABBITMQ_PORT
from support.rabbitmq import RabbitVhost, VhostError, rabbitmq_available
from support.smtp import SmtpSink

RATE = 20.0  # sign-ups per second
SECONDS = 10.0  # of sign-ups
CLIENTS = 16  # threads sending them: enough that slow answers do not hold the next sends back
WARMUP_SIGN_UPS = 6  # before the measured ones, each waited for at the sink: every process is up and warm
EVENTS = 400  # published for the throughput run
MAIL_TIMEOUT = 30.0  # after the last sign-up: mails later than this are missing
QUEUE_TIMEOUT = 60.0  # after the throughput run's consumer started: mails later than this are missing
LATENCY_TARGET = 1.0  # seconds, p99, at RATE sign-ups per second
VERIFICATION_EVENT = identity.VERIFICATION_EVENT


def percentile(values: list[float], fraction: float) -> float:
    """The same nearest-rank percentile as the HTTP load driver (`bench.load.Result.percentile`)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass(frozen=True)
class Sample:
    """One sign-up answered 201, in seconds after its request was sent (None: never happened)."""

    answered: float  # 201 received
    published: float | None  # the relay marked its event sent, after the broker confirmed it (wall clock)
    mailed: float | None  # the mail arrived at the SMTP sink
    late: float  # how long after its scheduled moment the request left (no client thread was free)


@dataclass(frozen=True)
class Latency:
    backend: str  # identity's database
    rate: float  # sign-ups per second asked for
    seconds: float
    clients: int  # threads sending them
    sent: int
    sent_rate: float  # sign-ups per second actually sent (first to last request)
    first_error: str  # the first sign-up that was not answered 201
    samples: list[Sample]  # the sign-ups answered 201
    duplicates: int  # mails beyond the first to an address
    cpu: dict[str, float]  # process -> cores used from the first request to the last mail
    waiting: dict[str, float]  # process -> cores' worth of time it was ready to run but no core was free
    window: float  # seconds from the first request to the last mail

    @property
    def accepted(self) -> int:
        return len(self.samples)

    @property
    def arrived(self) -> int:
        return sum(1 for sample in self.samples if sample.mailed is not None)

    @property
    def missing(self) -> int:
        return self.accepted - self.arrived

    @property
    def mailed(self) -> list[float]:
        """Request sent -> mail at the sink: the figure the target is about."""
        return [sample.mailed for sample in self.samples if sample.mailed is not None]

    @property
    def answered(self) -> list[float]:
        return [sample.answered for sample in self.samples]

    @property
    def published(self) -> list[float]:
        return [sample.published for sample in self.samples if sample.published is not None]

    @property
    def since_scheduled(self) -> list[float]:
        """Scheduled moment -> mail: also counts the wait for a free client thread."""
        return [sample.mailed + sample.late for sample in self.samples if sample.mailed is not None]

    @property
    def max_late(self) -> float:
        return max((sample.late for sample in self.samples), default=0.0)

    def stage(self, later: str, earlier: str) -> list[float]:
        """Per sign-up, the time between two of its moments ('answered', 'published', 'mailed'); 0 is sent."""
        pairs = ((getattr(s, later), 0.0 if earlier == "sent" else getattr(s, earlier)) for s in self.samples)
        return [b - a for b, a in pairs if a is not None and b is not None]

    @property
    def met(self) -> bool:
        return (self.accepted == self.sent and self.missing == 0 and self.sent_rate >= 0.95 * self.rate
                and percentile(self.mailed, 0.99) < LATENCY_TARGET)


@dataclass(frozen=True)
class Throughput:
    events: int
    published_seconds: float  # publishing them, one connection, each waiting for its confirm
    arrived: int
    duplicates: int
    seconds: float  # consumer process started -> last mail at the sink
    steady_seconds: float  # first mail -> last mail
    consumer_cpu: float  # CPU seconds of the consumer process over `seconds` (start-up included)
    consumer_waiting: float  # seconds it was ready to run but waited for a free core
    sink_cpu: float  # CPU seconds of the benchmark process (the SMTP sink) over `seconds`

    @property
    def rate(self) -> float:
        return self.arrived / self.seconds if self.seconds else 0.0

    @property
    def steady_rate(self) -> float:
        return (self.arrived - 1) / self.steady_seconds if self.steady_seconds else 0.0

    @property
    def missing(self) -> int:
        return self.events - self.arrived


@dataclass(frozen=True)
class Figures:
    latency: Latency
    throughput: Throughput
    rabbitmq: str  # server version
    ssl_context_ms: float  # CPU milliseconds of one ssl.create_default_context() in this process


@dataclass(frozen=True)
class Skipped:
    reason: str


# -- RabbitMQ ------------------------------------------------------------------------------------


def rabbitmq_unavailable() -> str | None:
    """None when RabbitMQ answers on loopback and rabbitmqctl is here; else why not."""
    if not rabbitmq_available():
        return f"RabbitMQ did not answer on 127.0.0.1:{RABBITMQ_PORT}"
    if shutil.which("rabbitmqctl") is None:
        return "rabbitmqctl is not on PATH (it makes the run's virtual host)"
    return None


def _connection(url: str):
    from kombu import Connection

    return Connection(url, transport_options={"confirm_publish": True}, connect_timeout=5, heartbeat=0)


def _prepare_bus(url: str) -> str:
    """Declare the exchanges and the notifier's queues; returns the server's version."""
    from services.notifier.subscriptions import mail_queues
    from shared import bus

    with _connection(url) as conn:
        bus.declare_topology(conn, (mail_queues(),))
        version = conn.connection.server_properties.get("version", "")
    return version.decode() if isinstance(version, bytes) else str(version)


def _queue(url: str, name: str = "notifier.mail") -> tuple[int, int]:
    """(messages ready, consumers) of a queue."""
    with _connection(url) as conn:
        result = conn.default_channel.queue_declare(name, passive=True)
        return result.message_count, result.consumer_count


# -- processes -----------------------------------------------------------------------------------


class Child:
    """`python -m <args>` in its own process group, output to a log; `with` stops the whole group."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path):
        self.args = args
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.started = 0.0  # time.monotonic() just before the process was created

    def __enter__(self) -> Child:
        self.started = time.monotonic()
        self.process = spawn(python_module(*self.args), self.env, self.log_path)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """The process's id; RuntimeError before it was started (`with`)."""
        if self.process is None:
            raise RuntimeError(f"{' '.join(self.args)} was not started")
        return self.process.pid

    def cpu_seconds(self) -> float:
        fields = servers._stat_fields(self.pid)
        return (int(fields[11]) + int(fields[12])) / servers.CLOCK_TICKS  # utime, stime

    def check(self) -> None:
        """RuntimeError, with the end of its log, if the process has exited."""
        if self.process is not None and (code := self.process.poll()) is not None:
            raise RuntimeError(f"{' '.join(self.args)} exited with {code}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, timeout=20)

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)


def run_queue_seconds(pid: int) -> float:
    """Time the process's threads spent ready to run but waiting for a core (/proc/<pid>/task/*/schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(task.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


# -- load ----------------------------------------------------------------------------------------


@dataclass
class Send:
    address: str
    scheduled: float
    sent: float = 0.0  # time.monotonic() as the request left
    sent_wall: float = 0.0  # time.time() then, to compare with the outbox's timestamps
    answered: float = 0.0
    status: int = 0
    error: str = ""


@dataclass
class Drive:
    sends: list[Send] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0  # the last request left


def drive(port: int, addresses: list[str], rate: float, clients: int) -> Drive:
    """Sign up each address, request i leaving at start + i / rate (open loop), from `clients` threads."""
    start = time.monotonic() + 0.2
    sends = [Send(address, start + index / rate) for index, address in enumerate(addresses)]
    lock = threading.Lock()
    next_index = iter(range(len(sends)))

    def loop() -> None:
        client = load.Client(port)
        try:
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                send = sends[index]
                time.sleep(max(0.0, send.scheduled - time.monotonic()))
                send.sent, send.sent_wall = time.monotonic(), time.time()
                try:
                    send.status, body = client.call("POST", "/v1/accounts", {
                        "email": send.address, "password": identity.PASSWORD, "first_name": "Bench",
                        "last_name": "Mark"})
                    if send.status != 201:
                        send.error = f"{send.status}: {json.dumps(body)[:200]}"
                except Exception as exc:  # a broken connection: an error for this sign-up, go on
                    send.error = f"{type(exc).__name__}: {exc}"
                send.answered = time.monotonic()
        finally:
            client.close()

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    deadline = start + len(sends) / rate + 60  # every request has a 30 s socket timeout
    for thread in threads:
        thread.join(timeout=max(0.1, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        raise RuntimeError("sign-up client threads did not finish")
    return Drive(sends, start, max((send.sent for send in sends), default=start))


def _published(database_url: str) -> dict[str, float]:
    """address -> when the relay marked its verification event sent (epoch seconds)."""
    outbox = Outbox(database_url)
    try:
        return {event["data"]["email"]: sent_at.timestamp()
                for event, sent_at in outbox.sent(VERIFICATION_EVENT) if sent_at is not None}
    finally:
        outbox.engine.dispose()


def _wait_for_mail(sink: SmtpSink, addresses: list[str], timeout: float, children: list[Child]) -> set[str]:
    """`sink.wait_for_arrivals`, failing at once with its log when a process it depends on exited."""
    deadline = time.monotonic() + timeout
    while True:
        missing = sink.wait_for_arrivals(addresses, min(1.0, max(0.0, deadline - time.monotonic())))
        if not missing or time.monotonic() >= deadline:
            return missing
        for child in children:
            child.check()


def _duplicates(sink: SmtpSink, addresses: list[str]) -> int:
    return sum(max(0, len(sink.arrivals(address)) - 1) for address in addresses)


# -- the two measurements --------------------------------------------------------------------------


def _latency(backend: str, database_url: str, sink: SmtpSink, identity_server: servers.Server,
             children: dict[str, Child], rate: float, seconds: float, clients: int) -> Latency:
    tag = f"{os.getpid()}-{int(time.time())}"
    warmup = [f"warm-{tag}-{n}@example.com" for n in range(WARMUP_SIGN_UPS)]
    warm = drive(identity_server.port, warmup, rate / 2, clients)
    failed = [send.error for send in warm.sends if send.status != 201]
    if failed:
        raise RuntimeError(f"warm-up sign-up failed: {failed[0]}\n{identity_server.log_tail()}")
    if missing := _wait_for_mail(sink, warmup, MAIL_TIMEOUT, list(children.values())):
        raise RuntimeError(f"no mail for {len(missing)} warm-up sign-up(s) after {MAIL_TIMEOUT:.0f} s; consumer log:\n"
                           f"{children['consumer'].log_tail()}\nrelay log:\n{children['relay'].log_tail()}")

    addresses = [f"latency-{tag}-{n}@example.com" for n in range(int(rate * seconds))]
    pids = {"identity (gunicorn)": [identity_server.pid, *identity_server.workers()],
            **{name: [child.pid] for name, child in children.items()},
            "benchmark (client threads, SMTP sink)": [os.getpid()]}

    def waited() -> dict[str, float]:
        return {name: sum(run_queue_seconds(pid) for pid in group) for name, group in pids.items()}

    def used() -> dict[str, float]:
        return {"identity (gunicorn)": servers.tree_cpu_seconds(identity_server.pid),
                **{name: child.cpu_seconds() for name, child in children.items()},
                "benchmark (client threads, SMTP sink)": time.process_time()}

    cpu_before, waited_before = used(), waited()
    result = drive(identity_server.port, addresses, rate, clients)
    accepted = [send for send in result.sends if send.status == 201]
    _wait_for_mail(sink, [send.address for send in accepted], MAIL_TIMEOUT, list(children.values()))
    window = time.monotonic() - result.started  # the last mail has just arrived (or the wait ran out)
    cpu = {name: (total - cpu_before[name]) / window for name, total in used().items()}
    waiting = {name: (total - waited_before[name]) / window for name, total in waited().items()}
    arrivals = {send.address: sink.arrivals(send.address) for send in accepted}

    published = _published(database_url)
    errors = [send.error for send in result.sends if send.status != 201]
    first_sent = min(send.sent for send in result.sends)
    samples = [Sample(answered=send.answered - send.sent,
                      published=published[send.address] - send.sent_wall if send.address in published else None,
                      mailed=arrivals[send.address][0] - send.sent if arrivals[send.address] else None,
                      late=send.sent - send.scheduled)
               for send in accepted]
    return Latency(backend=backend, rate=rate, seconds=seconds, clients=clients, sent=len(result.sends),
                   sent_rate=(len(result.sends) - 1) / (result.finished - first_sent) if result.finished > first_sent
                   else 0.0, first_error=errors[0] if errors else "", samples=samples,
                   duplicates=_duplicates(sink, [send.address for send in accepted]), cpu=cpu, waiting=waiting,
                   window=window)


def verification_event(address: str, expires_at: str):
    """An email-verification event like the one identity writes to its outbox at sign-up."""
    from shared.database import new_id
    from shared.events import Event

    return Event(VERIFICATION_EVENT, {
        "account_id": new_id(), "email": address, "first_name": "Bench",
        "verification_url": f"http://127.0.0.1:8001/verify-email?token=bench-{new_id()}", "expires_at": expires_at})


def _publish(url: str, addresses: list[str]) -> float:
    """Verification events for `addresses` straight to threshold.events, as the relay would; returns seconds."""
    from datetime import timedelta

    from kombu import Producer

    from shared import bus
    from shared.database import utcnow

    expires_at = (utcnow() + timedelta(days=1)).isoformat()
    with _connection(url) as conn:
        producer = Producer(conn.default_channel, exchange=bus.EXCHANGE)
        started = time.monotonic()
        for address in addresses:
            event = verification_event(address, expires_at)
            producer.publish(event.envelope("/bench"), routing_key=VERIFICATION_EVENT, serializer="json",
                             delivery_mode=2, message_id=event.id, retry=False)
        return time.monotonic() - started


def _throughput(url: str, sink: SmtpSink, consumer_env: dict[str, str], var_dir: Path, events: int) -> Throughput:
    addresses = [f"throughput-{os.getpid()}-{n}@example.com" for n in range(events)]
    published_seconds = _publish(url, addresses)
    deadline = time.monotonic() + 10
    while (ready := _queue(url)[0]) < events:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {ready} of {events} published events are in notifier.mail")
        time.sleep(0.05)
    bench_before = time.process_time()
    with Child(["services.notifier", "consume"], consumer_env, var_dir / "consumer-throughput.log") as consumer:
        _wait_for_mail(sink, addresses, QUEUE_TIMEOUT, [consumer])
        consumer_cpu, consumer_waiting = consumer.cpu_seconds(), run_queue_seconds(consumer.pid)
        sink_cpu = time.process_time() - bench_before
        firsts = [times[0] for address in addresses if (times := sink.arrivals(address))]
        last = max(firsts, default=consumer.started)
        return Throughput(events=events, published_seconds=published_seconds, arrived=len(firsts),
                          duplicates=_duplicates(sink, addresses), seconds=last - consumer.started,
                          steady_seconds=last - min(firsts, default=last), consumer_cpu=consumer_cpu,
                          consumer_waiting=consumer_waiting,
                          sink_cpu=sink_cpu)


def ssl_context_ms(calls: int = 20) -> float:
    """CPU cost of `ssl.create_default_context()` (it loads the system's CA certificates)."""
    import ssl

    started = time.thread_time()
    for _ in range(calls):
        ssl.create_default_context()
    return (time.thread_time() - started) / calls * 1000


def run(var_dir: Path, rate: float = RATE, seconds: float = SECONDS, clients: int = CLIENTS,
        events: int = EVENTS) -> Figures | Skipped:
    """Both measurements, or why they could not be made (RabbitMQ not there)."""
    if reason := rabbitmq_unavailable():
        return Skipped(reason)
    with ExitStack() as stack:
        try:
            vhost = stack.enter_context(RabbitVhost(f"threshold-bench-{os.getpid()}"))
        except (VhostError, OSError, subprocess.TimeoutExpired) as exc:
            return Skipped(f"could not make a RabbitMQ virtual host: {exc}")
        version = _prepare_bus(vhost.url())
        if postgres_available():
            backend, database_url = "PostgreSQL", stack.enter_context(databases.fresh_postgres("events"))
        else:
            backend, database_url = "SQLite", f"sqlite:///{var_dir / 'identity.db'}"
        port = free_port()
        metrics = var_dir / "metrics"
        for group in ("identity", "notifier"):
            (metrics / group).mkdir(parents=True, exist_ok=True)
        identity_env = dict(identity.environment(database_url, var_dir, port), WEB_CONCURRENCY="2",
                            BROKER_URL=vhost.url(), PROMETHEUS_MULTIPROC_DIR=str(metrics / "identity"))
        consumer_env = dict(os.environ, APP_ENV="development", VAR_DIR=str(var_dir), BROKER_URL=vhost.url(),
                            NOTIFIER_DATABASE_URL=f"sqlite:///{var_dir / 'notifier.db'}",
                            PROMETHEUS_MULTIPROC_DIR=str(metrics / "notifier"), PYTHONUNBUFFERED="1")
        migrate("services.identity", identity_env)
        migrate("services.notifier", consumer_env)
        sink = stack.enter_context(SmtpSink(keep_mail=False))
        consumer_env["SMTP_URL"] = sink.url

        server = stack.enter_context(servers.Server([sys.executable, "-m", "services.identity", "serve"],
                                                    identity_env, port, var_dir / "identity.log", None))
        children = {"relay": stack.enter_context(Child(["services.identity", "relay"], identity_env,
                                                       var_dir / "relay.log")),
                    "consumer": stack.enter_context(Child(["services.notifier", "consume"], consumer_env,
                                                          var_dir / "consumer.log"))}
        print(f"  {rate:g} sign-ups per second for {seconds:g} s, identity on {backend}...", flush=True)
        latency = _latency(backend, database_url, sink, server, children, rate, seconds, clients)
        children["consumer"].stop()
        print(f"  {events} queued events through one consumer...", flush=True)
        throughput = _throughput(vhost.url(), sink, consumer_env, var_dir, events)
        return Figures(latency, throughput, version, ssl_context_ms())
