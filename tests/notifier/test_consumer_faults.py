"""The notifier's consumer as a real process (`python -m services.notifier consume`) against the real
PostgreSQL, RabbitMQ and an SMTP server, while its database goes away and comes back: it backs off
and goes on, never exits, and every mail arrives exactly once. And the notifier's /readyz, another
process, says when no consumer is at work.

The database goes away the way a restart or failover looks to a client: new connections are refused
(`ALLOW_CONNECTIONS false`) and every open one is ended (`pg_terminate_backend`), on a database of
the test's own.
"""
from __future__ import annotations

import os
import signal
import time
import uuid

import pytest
from kombu import Connection, Producer

from services.notifier.app import create_app
from services.notifier.settings import Settings
from services.notifier.subscriptions import mail_queues
from shared import bus
from shared.events import Event
from support.databases import postgres_available
from support.smtp import SmtpSink
from tests import backends
from tests.processes import Processes, wait_for
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.slow]
STALE_AFTER = 4  # seconds: the consumer beats every second


def verification_event(address: str) -> Event:
    return Event("identity.email_verification.requested", {
        "account_id": str(uuid.uuid4()), "email": address, "first_name": "Ada",
        "verification_url": f"http://127.0.0.1:8001/verify-email?token={uuid.uuid4().hex}",
        "expires_at": "2030-01-02T03:04:05+00:00"})


class Notifier:
    """A notifier database of this test's own, consumers as processes, and the notifier's HTTP app."""

    def __init__(self, database_url: str, broker_url: str, sink: SmtpSink, processes: Processes):
        self.database_url = database_url
        self.broker_url = broker_url
        self.sink = sink
        self.processes = processes
        self.client = create_app(Settings.from_env(processes.env)).test_client()

    def consumer(self, name: str = "consumer", broker_url: str | None = None):
        return self.processes.start(name, "services.notifier", "consume", BROKER_URL=broker_url or self.broker_url)

    def readiness(self) -> tuple[int, dict]:
        response = self.client.get("/readyz")
        return response.status_code, response.get_json()

    def wait_ready(self) -> dict:
        return wait_for(lambda: (lambda status, body: status == 200 and body)(*self.readiness()),
                        what="the notifier to be ready")

    def wait_backing_off(self, consumer) -> None:
        """Until the consumer logs its backoff; it must not have exited meanwhile."""
        wait_for(lambda: "backing off" in self.processes.log("consumer") or consumer.poll() is not None,
                 what="the consumer to back off")
        assert consumer.poll() is None, f"the consumer exited:\n{self.processes.log('consumer')[-3000:]}"

    def publish(self, addresses: list[str]) -> None:
        with Connection(self.broker_url, transport_options={"confirm_publish": True}) as conn:
            bus.declare_topology(conn, (mail_queues(),))
            producer = Producer(conn.default_channel, exchange=bus.EXCHANGE)
            for address in addresses:
                producer.publish(verification_event(address).envelope("/test"), serializer="json",
                                 routing_key="identity.email_verification.requested", delivery_mode=2)

    def refuse_connections(self) -> None:
        backends.refuse_connections(self.database_url)

    def allow_connections(self) -> None:
        backends.allow_connections(self.database_url)

    def queue_depth(self) -> int:
        with Connection(self.broker_url) as conn:
            return conn.default_channel.queue_declare(mail_queues().name, passive=True).message_count

    def assert_each_mailed_once(self, addresses: list[str]) -> None:
        self.sink.wait_until(lambda: all(self.sink.mail_to(a) for a in addresses), timeout=90,
                             what=f"a mail to each of {len(addresses)} addresses")
        wait_for(lambda: self.queue_depth() == 0, what="the queue to drain")
        time.sleep(1.0)  # one more beat for a duplicate to surface, were there one
        counts = {a: len(self.sink.mail_to(a)) for a in addresses}
        assert counts == {a: 1 for a in addresses}, self.sink.summary()
        assert not self.sink.deferred


@pytest.fixture
def notifier(databases, rabbit_vhost, tmp_path):
    backends.require(postgres_available(), "PostgreSQL")
    url = databases.fresh("postgres", "services.notifier", disposable=True)
    with SmtpSink() as sink:
        env = {**os.environ, "APP_ENV": "test", "NOTIFIER_DATABASE_URL": url, "BROKER_URL": rabbit_vhost.url(),
               "SMTP_URL": sink.url, "VAR_DIR": str(tmp_path), "NOTIFIER_CONSUMER_STALE_AFTER": str(STALE_AFTER),
               "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"}
        processes = Processes(tmp_path, env)
        made = Notifier(url, rabbit_vhost.url(), sink, processes)
        try:
            yield made
        finally:
            processes.stop_all()
            made.allow_connections()
            databases.drop(url)


def addresses(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{n}-{uuid.uuid4().hex[:6]}@example.com" for n in range(count)]


def test_a_database_outage_holds_mail_back_then_every_mail_arrives_once_from_the_same_consumer(notifier):
    consumer = notifier.consumer()
    notifier.wait_ready()
    before = addresses("before", 3)
    notifier.publish(before)
    notifier.sink.wait_until(lambda: all(notifier.sink.mail_to(a) for a in before), timeout=30, what="the first mails")

    notifier.refuse_connections()
    during = addresses("outage", 12)
    notifier.publish(during)
    notifier.wait_backing_off(consumer)
    wait_for(lambda: notifier.readiness()[0] == 503, what="/readyz to say not ready")
    assert not any(notifier.sink.mail_to(a) for a in during)

    notifier.allow_connections()
    notifier.assert_each_mailed_once(before + during)
    assert consumer.poll() is None, notifier.processes.log("consumer")  # the same process, never restarted
    assert notifier.wait_ready()["checks"] == {"database": "ok", "bus": "ok", "consumer": "ok"}


def test_the_database_gone_between_the_send_and_the_record_gives_one_mail(notifier):
    """The mail is out but its delivery cannot be recorded: the consumer keeps the message and records
    it when the database is back, rather than putting it back on the queue to be mailed again."""
    consumer = notifier.consumer()
    notifier.wait_ready()
    notifier.sink.hold()
    [address] = addresses("held", 1)
    notifier.publish([address])
    notifier.sink.wait_until(lambda: address in notifier.sink.rcpt_attempts, timeout=30, what="the send to start")
    notifier.refuse_connections()
    notifier.sink.release()
    notifier.sink.wait_for_mail(address, timeout=30)
    notifier.wait_backing_off(consumer)

    notifier.allow_connections()
    later = addresses("later", 2)
    notifier.publish(later)
    notifier.assert_each_mailed_once([address, *later])
    assert consumer.poll() is None, notifier.processes.log("consumer")


def test_readyz_names_the_consumer_when_none_is_at_work(notifier):
    notifier.consumer()
    assert notifier.wait_ready()["checks"] == {"database": "ok", "bus": "ok", "consumer": "ok"}

    notifier.processes.kill("consumer")  # SIGKILL: it leaves its heartbeat behind, which goes stale
    status, body = wait_for(lambda: (lambda s, b: s == 503 and (s, b))(*notifier.readiness()),
                            timeout=STALE_AFTER + 10, what="/readyz to notice the consumer is gone")
    assert body["code"] == "not_ready"
    assert body["checks"] == {"database": "ok", "bus": "ok", "consumer": "failed: ConsumerSilent"}
    assert "consumer" in body["detail"]

    notifier.consumer("consumer-again")
    notifier.wait_ready()
    notifier.processes.kill("consumer-again", signal.SIGTERM)  # a clean stop removes its heartbeat at once
    status, body = notifier.readiness()
    assert status == 503 and body["checks"]["consumer"] == "failed: ConsumerSilent"


def test_readyz_says_the_consumer_is_backing_off_while_it_cannot_reach_the_broker(notifier):
    with TcpProxy(5672) as proxy:
        consumer = notifier.consumer(broker_url=notifier.broker_url.replace(":5672/", f":{proxy.port}/"))
        notifier.wait_ready()
        proxy.cut()
        status, body = wait_for(lambda: (lambda s, b: s == 503 and (s, b))(*notifier.readiness()),
                                timeout=STALE_AFTER + 10, what="/readyz to notice the consumer backing off")
        assert body["checks"] == {"database": "ok", "bus": "ok", "consumer": "failed: ConsumerBackingOff"}

        proxy.restore()
        notifier.wait_ready()
        later = addresses("after-broker", 2)
        notifier.publish(later)
        notifier.assert_each_mailed_once(later)
        assert consumer.poll() is None
