"""The event path end to end, against the real RabbitMQ and PostgreSQL on loopback and a real SMTP
server: sign-ups through identity's API, the outbox relay and the notifier's consumer as real
processes, faults made the way they happen (a cut network, a killed process, a refusing SMTP server).

Every mail must arrive, and arrive once.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests
from kombu import Connection, Producer
from sqlalchemy import create_engine, text

from services.notifier.subscriptions import mail_queues
from shared import bus
from support import ROOT
from support.databases import postgres_available
from support.smtp import SmtpSink
from tests import backends
from tests.conftest import identity_env
from tests.processes import Processes, wait_for
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.slow]
RETRY_DELAYS = "0.5,1,2"


@pytest.fixture
def rabbit(rabbit_vhost):
    return rabbit_vhost


@pytest.fixture
def pg(databases):
    backends.require(postgres_available(), "PostgreSQL")
    urls = {"identity": databases.fresh("postgres", "services.identity"),
            "notifier": databases.fresh("postgres", "services.notifier")}
    yield urls
    for url in urls.values():
        databases.drop(url)


@pytest.fixture
def sink():
    with SmtpSink() as server:
        yield server


class EventPath:
    def __init__(self, identity_app, pg: dict, rabbit, sink: SmtpSink, processes: Processes):
        self.identity = identity_app.test_client()
        self.identity_app = identity_app
        self.pg = pg
        self.rabbit = rabbit
        self.sink = sink
        self.processes = processes

    def relay(self, name: str = "relay", broker_url: str | None = None):
        env = {"BROKER_URL": broker_url} if broker_url else {}
        return self.processes.start(name, "services.identity", "relay", **env)

    def consumer(self, name: str = "consumer", broker_url: str | None = None):
        return self.processes.start(name, "services.notifier", "consume",
                                    **({"BROKER_URL": broker_url} if broker_url else {}))

    def sign_up(self, email: str, client=None) -> int:
        body = {"email": email, "password": "correct horse battery", "first_name": "Ada", "last_name": "L"}
        if client is None:
            return self.identity.post("/v1/accounts", json=body).status_code
        return client.post(f"{client.base}/v1/accounts", json=body, timeout=30).status_code

    def unsent(self) -> int:
        engine = create_engine(self.pg["identity"])
        try:
            with engine.connect() as conn:
                return conn.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")).scalar_one()
        finally:
            engine.dispose()

    def queue_depth(self, name: str) -> int:
        with Connection(self.rabbit.url()) as conn:
            return conn.default_channel.queue_declare(name, passive=True).message_count

    def settle(self) -> None:
        """Wait until the outbox is published and the notifier's queues are empty (nothing in flight)."""
        queues = mail_queues(tuple(float(d) for d in RETRY_DELAYS.split(",")))
        wait_for(lambda: self.unsent() == 0, what="the outbox to drain")
        wait_for(lambda: all(self.queue_depth(q.name) == 0 for q in queues.all() if q.name != queues.dead().name),
                 what="the notifier queues to drain")
        time.sleep(1.0)  # one more beat for a duplicate to surface, were there one

    def mail_ids(self, address: str) -> list[str]:
        return [mail.message["Message-ID"] for mail in self.sink.mail_to(address)]


@pytest.fixture
def event_path(pg, rabbit, sink, tmp_path, clock):
    from services.identity.app import create_app
    from services.identity.settings import Settings

    env = identity_env(pg["identity"], tmp_path, BROKER_URL=rabbit.url())
    process_env = {**os.environ, **env, "NOTIFIER_DATABASE_URL": pg["notifier"], "SMTP_URL": sink.url,
                   "NOTIFIER_RETRY_DELAYS": RETRY_DELAYS, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"}
    processes = Processes(tmp_path, process_env)
    try:
        yield EventPath(create_app(Settings.from_env(env)), pg, rabbit, sink, processes)
    finally:
        processes.stop_all()


class HttpClient(requests.Session):
    def __init__(self, base: str):
        super().__init__()
        self.base = base


def test_fifty_concurrent_sign_ups_give_fifty_mails(event_path, live_server):
    server = live_server(event_path.identity_app)
    event_path.relay()
    event_path.consumer()
    addresses = [f"crowd{n}-{uuid.uuid4().hex[:6]}@example.com" for n in range(50)]
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def sign_up_batch(batch):
        client = HttpClient(server.url)
        barrier.wait()
        statuses.extend(event_path.sign_up(address, client) for address in batch)

    threads = [threading.Thread(target=sign_up_batch, args=(addresses[i::10],)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert statuses == [201] * 50
    event_path.sink.wait_until(lambda: all(event_path.sink.mail_to(a) for a in addresses), timeout=60,
                               what="a mail to each of the 50 addresses")
    event_path.settle()
    assert {a: len(event_path.mail_ids(a)) for a in addresses} == {a: 1 for a in addresses}


def test_broker_down_during_sign_ups_mails_arrive_once_after_it_returns(event_path):
    with TcpProxy(5672) as proxy:
        broker_via_proxy = event_path.rabbit.url(proxy.port)
        event_path.consumer()
        event_path.relay(broker_url=broker_via_proxy)
        first = f"before-{uuid.uuid4().hex[:6]}@example.com"
        assert event_path.sign_up(first) == 201
        event_path.sink.wait_for_mail(first, timeout=30)

        proxy.cut()
        addresses = [f"outage{n}-{uuid.uuid4().hex[:6]}@example.com" for n in range(5)]
        assert [event_path.sign_up(a) for a in addresses] == [201] * 5
        time.sleep(2)
        assert event_path.unsent() >= 5, event_path.processes.log("relay")  # the events wait in the outbox
        assert not any(event_path.sink.mail_to(a) for a in addresses)

        proxy.restore()
        event_path.sink.wait_until(lambda: all(event_path.sink.mail_to(a) for a in addresses), timeout=90,
                                   what="the mails held back by the outage")
        event_path.settle()
        assert [len(event_path.mail_ids(a)) for a in [first, *addresses]] == [1] * 6
        assert "retrying" in event_path.processes.log("relay")


def _hang_outbox_updates(database_url: str) -> None:
    """A trigger that stalls every UPDATE of the outbox: the relay publishes, then hangs before marking sent."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE FUNCTION test_hang() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(600); "
                          "RETURN NEW; END $$ LANGUAGE plpgsql"))
        conn.execute(text("CREATE TRIGGER test_hang BEFORE UPDATE ON outbox FOR EACH ROW EXECUTE FUNCTION test_hang()"))
    engine.dispose()


def _release_outbox_updates(database_url: str) -> None:
    """Drop the trigger. The killed relay's server session is still sleeping in it, holding its row locks
    until PostgreSQL notices the client is gone; end it now rather than after TCP keepalive would."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE '%outbox%'"))
        conn.execute(text("DROP TRIGGER test_hang ON outbox"))
        conn.execute(text("DROP FUNCTION test_hang()"))
    engine.dispose()


def test_relay_killed_after_publishing_before_marking_sent_gives_one_mail(event_path):
    _hang_outbox_updates(event_path.pg["identity"])
    event_path.consumer()
    event_path.relay()
    address = f"crash-{uuid.uuid4().hex[:6]}@example.com"
    assert event_path.sign_up(address) == 201
    event_path.sink.wait_for_mail(address, timeout=30)  # published and delivered; the relay hangs in UPDATE
    assert event_path.unsent() == 2  # registered + verification: not marked sent
    event_path.processes.kill("relay")
    _release_outbox_updates(event_path.pg["identity"])

    event_path.relay("relay-again")  # publishes the same rows again
    event_path.settle()
    assert len(event_path.mail_ids(address)) == 1


def test_smtp_refusing_for_a_while_is_retried_then_mails_once(event_path):
    event_path.sink.defer_next(3)
    event_path.consumer()
    event_path.relay()
    address = f"greylisted-{uuid.uuid4().hex[:6]}@example.com"
    assert event_path.sign_up(address) == 201
    event_path.sink.wait_for_mail(address, timeout=60)
    event_path.settle()
    assert len(event_path.sink.deferred) == 3
    assert len(event_path.mail_ids(address)) == 1
    assert "retry 3" in event_path.processes.log("consumer")


def _publish_raw(url: str, body: bytes, content_type: str, routing_key: str) -> None:
    with Connection(url, transport_options={"confirm_publish": True}) as conn:
        bus.declare_topology(conn, (mail_queues(),))
        Producer(conn.default_channel).publish(body, exchange=bus.EXCHANGE, routing_key=routing_key,
                                               content_type=content_type, content_encoding="binary",
                                               delivery_mode=2)


def _dead_letters(event_path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "services.notifier", "dead-letters", *args],
                            env=event_path.processes.env, capture_output=True, text=True, timeout=60,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_refused_and_poison_messages_are_dead_lettered_while_later_mail_flows(event_path):
    refused = f"nosuchuser-{uuid.uuid4().hex[:6]}@example.com"
    later = f"later-{uuid.uuid4().hex[:6]}@example.com"
    event_path.sink.reject_recipients(refused)
    event_path.consumer()
    event_path.relay()
    assert event_path.sign_up(refused) == 201
    routing_key = "identity.email_verification.requested"
    _publish_raw(event_path.rabbit.url(), b"\x80\x04not json at all", "application/json", routing_key)
    _publish_raw(event_path.rabbit.url(), b"cos\nsystem\n(S'true'\ntR.", "application/x-python-serialize", routing_key)
    _publish_raw(event_path.rabbit.url(), json.dumps({"hello": "world"}).encode(), "application/json", routing_key)
    assert event_path.sign_up(later) == 201

    event_path.sink.wait_for_mail(later, timeout=30)
    wait_for(lambda: event_path.queue_depth("notifier.mail.dead") == 4, what="four dead letters")
    assert event_path.sink.mail_to(refused) == []
    listing = _dead_letters(event_path, "list")
    assert "4 dead letter(s)" in listing and "identity.email_verification.requested" in listing
    assert event_path.queue_depth("notifier.mail.dead") == 4  # listing keeps them

    # The operator fixes the mailbox and replays the refused one: it arrives, once.
    event_path.sink._rejected.clear()
    verification_event_id = next(line.split("\t")[0] for line in listing.splitlines()
                                 if "identity.email_verification.requested" in line)
    assert "replayed 1 message(s)" in _dead_letters(event_path, "replay", "--id", verification_event_id)
    event_path.sink.wait_for_mail(refused, timeout=30)
    assert event_path.queue_depth("notifier.mail.dead") == 3
    event_path.settle()
    assert len(event_path.mail_ids(refused)) == 1 and len(event_path.mail_ids(later)) == 1


def test_notifier_killed_before_the_send_gives_one_mail(event_path):
    event_path.sink.hold()
    event_path.consumer()
    event_path.relay()
    address = f"killed-{uuid.uuid4().hex[:6]}@example.com"
    assert event_path.sign_up(address) == 201
    event_path.sink.wait_until(lambda: address in event_path.sink.rcpt_attempts, timeout=30,
                               what="the consumer to start the SMTP transaction")
    event_path.processes.kill("consumer")  # mid-send, nothing acknowledged
    event_path.sink.release()
    assert event_path.sink.mail_to(address) == []

    event_path.consumer("consumer-again")  # the unacknowledged message is delivered again
    event_path.sink.wait_for_mail(address, timeout=30)
    event_path.settle()
    assert len(event_path.mail_ids(address)) == 1


def test_notifier_killed_after_the_send_before_the_ack_sends_no_new_mail(event_path):
    """Killed once the mail is sent and recorded but not yet acknowledged: the redelivered message is
    recognised by its event id and acknowledged without a second mail."""
    event_path.consumer()
    event_path.relay()
    first = f"first-{uuid.uuid4().hex[:6]}@example.com"
    assert event_path.sign_up(first) == 201
    event_path.sink.wait_for_mail(first, timeout=30)
    event_path.settle()
    # Stop consuming, then put the already-delivered event back on the queue, as the broker does with
    # a message whose consumer died between recording the delivery and the ack.
    event_path.processes.kill("consumer")
    engine = create_engine(event_path.pg["identity"])
    with engine.connect() as conn:
        envelope = conn.execute(text("SELECT envelope FROM outbox WHERE type = "
                                     "'identity.email_verification.requested'")).scalar_one()
    engine.dispose()
    _publish_raw(event_path.rabbit.url(), envelope.encode(), "application/json",
                 "identity.email_verification.requested")
    event_path.consumer("consumer-again")
    event_path.settle()
    assert len(event_path.mail_ids(first)) == 1
