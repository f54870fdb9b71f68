"""The notifier's real consumer, end to end from the bus to a real SMTP server.

Events go through kombu's in-memory transport (the broker is not what is under test here), the
consumer (MailConsumer + Renderer + SmtpSender/FileSender + Deliveries on a fresh migrated
database, SQLite and PostgreSQL) runs in a thread, and mail lands in an aiosmtpd sink.

The consumer handles one message at a time, in queue order. Tests that assert something did *not*
happen publish a good "sentinel" event afterwards and wait for it: once it arrived, everything
before it was handled. (On this transport a retry is waited out by the consumer itself and the
message goes back to the end of the queue; what cannot be mailed goes to the dead-letter queue.)
"""
from __future__ import annotations

import email
import email.policy
import json
import pickle
import socket
import string
import threading
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from kombu import Connection, Producer

from services.notifier.consumer import MailConsumer
from services.notifier.messages import Renderer
from services.notifier.repository import Deliveries
from services.notifier.senders import FileSender, SmtpSender
from services.notifier.subscriptions import mail_queues
from shared import addresses, bus
from shared.database import make_engine
from shared.events import Event
from support.smtp import SmtpSink

MAIL_FROM = "Threshold <no-reply@threshold.test>"
MEMORY_BUS = {"polling_interval": 0.01}
WAIT = 15.0  # bound on every wait; a healthy run needs well under a second per mail
QUEUES = mail_queues()


def memory_connection() -> Connection:
    return Connection("memory://", transport_options=MEMORY_BUS)


def unique_address(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def verification_event(email_address: str, first_name: str = "Ada") -> Event:
    token = uuid.uuid4().hex
    return Event("identity.email_verification.requested", {
        "account_id": str(uuid.uuid4()),
        "email": email_address,
        "first_name": first_name,
        "verification_url": f"http://127.0.0.1:8001/verify-email?token={token}",
        "expires_at": "2030-01-02T03:04:05+00:00",
    })


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def smtp_sink():
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def notifier_db(backend, databases):
    url = databases.fresh(backend, "services.notifier")
    yield url
    databases.drop(url)


@pytest.fixture
def deliveries(notifier_db):
    engine = make_engine(notifier_db)
    yield Deliveries(engine)
    engine.dispose()


class Bus:
    """The test's side of the in-memory bus: clean notifier queues, a producer, the dead letters."""

    def __init__(self):
        self.connection = memory_connection()
        bus.declare_topology(self.connection, (QUEUES,))
        self.purge()  # the memory transport's state is process-global: an earlier test's leftovers go
        self.producer = Producer(self.connection.default_channel, exchange=bus.EXCHANGE)

    def purge(self) -> None:
        for queue in (QUEUES.name, QUEUES.dead_routing_key):
            self.connection.default_channel.queue_purge(queue)

    def publish(self, event_or_body, routing_key: str | None = None) -> dict:
        """Publish an Event as a CloudEvents envelope (or any raw JSON body) with the event type as key."""
        body = event_or_body.envelope("/test") if isinstance(event_or_body, Event) else event_or_body
        self.producer.publish(body, routing_key=routing_key or body["type"], serializer="json", delivery_mode=2)
        return body

    def publish_raw(self, payload: bytes, routing_key: str, content_type: str = "application/json") -> None:
        self.producer.publish(payload, routing_key=routing_key, content_type=content_type, content_encoding="utf-8")

    def take_dead_letters(self) -> list[tuple[dict, bytes]]:
        """Remove and return every message in the notifier's dead-letter queue as (headers, raw body)."""
        queue = QUEUES.dead()(self.connection.default_channel)
        letters = []
        while (message := queue.get(no_ack=True)) is not None:
            body = message.body if isinstance(message.body, bytes) else message.body.encode()
            letters.append((dict(message.headers or {}), body))
        return letters

    def close(self) -> None:
        self.purge()
        self.connection.release()


@pytest.fixture
def events_bus():
    b = Bus()
    yield b
    b.close()


class ConsumerThread:
    """MailConsumer.run() in a daemon thread; stop() ends it and re-raises anything it died of."""

    def __init__(self, consumer: MailConsumer):
        self.consumer = consumer
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="mail-consumer", daemon=True)

    def _run(self) -> None:
        try:
            self.consumer.run()
        except BaseException as exc:  # reported by stop() and alive(): a crashed consumer fails the test
            self.error = exc

    def start(self) -> ConsumerThread:
        self.thread.start()
        return self

    def assert_alive(self) -> None:
        assert self.error is None, f"the consumer died: {self.error!r}"
        assert self.thread.is_alive(), "the consumer stopped"

    def stop(self) -> None:
        self.consumer.should_stop = True
        self.thread.join(timeout=WAIT)
        assert not self.thread.is_alive(), "the consumer did not stop within the bound"
        self.consumer.close()
        if self.error is not None:
            raise AssertionError(f"the consumer died: {self.error!r}") from self.error


@pytest.fixture
def start_consumer(events_bus, deliveries, smtp_sink):
    """Start the notifier's consumer; by default it sends to the SMTP sink with short retry delays."""
    running: list[ConsumerThread] = []

    def start(sender=None, retry_delays=(0.05, 0.05, 0.05)) -> ConsumerThread:
        consumer = MailConsumer(memory_connection(), Renderer(MAIL_FROM), sender or SmtpSender(smtp_sink.url, 5),
                                deliveries, prefetch_count=10, retry_delays=retry_delays)
        runner = ConsumerThread(consumer).start()
        running.append(runner)
        return runner

    yield start
    failures = []
    for runner in running:  # stop every one, then report the first that failed
        try:
            runner.stop()
        except AssertionError as exc:
            failures.append(exc)
    if failures:
        raise failures[0]


def parts(message: EmailMessage) -> tuple[str, str]:
    """(text, html) bodies of a multipart/alternative mail."""
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None and html_part is not None, message.as_string()[:2000]
    return text_part.get_content(), html_part.get_content()


def wait_mail(sink: SmtpSink, consumer: ConsumerThread, address: str, count: int = 1):
    """Wait (bounded) for `count` mails to `address`; fail at once if the consumer died meanwhile."""
    sink.wait_until(lambda: len(sink.mail_to(address)) >= count or consumer.error is not None, WAIT,
                    f"{count} mail(s) to {address}")
    consumer.assert_alive()
    return sink.mail_to(address)[-1]


def wait_delivered(deliveries: Deliveries, consumer: ConsumerThread, event_id: str) -> None:
    """The ledger is written just after the server said 250: wait (bounded) for it."""
    deadline = time.monotonic() + WAIT
    while not deliveries.delivered(event_id):
        consumer.assert_alive()
        assert time.monotonic() < deadline, f"delivery of {event_id} was not recorded within {WAIT}s"
        time.sleep(0.02)


# -- tests --------------------------------------------------------------------------------------


def test_verification_mail_has_text_and_html_parts_and_the_event_id_as_message_id(
        events_bus, start_consumer, smtp_sink, deliveries):
    consumer = start_consumer()
    address = unique_address("ada")
    event = verification_event(address)
    events_bus.publish(event)

    mail = wait_mail(smtp_sink, consumer, address)
    message = mail.message
    assert mail.rcpt_tos == (address,)
    assert mail.mail_from == "no-reply@threshold.test"
    assert message["Subject"] == "Verify your email address"
    assert message["To"] == address
    assert message["From"] == MAIL_FROM
    assert message["Message-ID"] == f"<{event.id}@threshold>"
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    link = event.data["verification_url"]
    assert link in text
    assert "VERIFY MY EMAIL" in html
    assert f'href="{link}"' in html  # the button
    assert f">{link}</a>" in html  # and the plain link for when the button does not work
    assert "Hi Ada," in text and "Hi Ada," in html
    wait_delivered(deliveries, consumer, event.id)


def test_a_name_with_markup_is_escaped_in_the_html_part(events_bus, start_consumer, smtp_sink):
    consumer = start_consumer()
    address = unique_address("mallory")
    name = '<script>alert("x")</script><b>Bob</b>'
    events_bus.publish(verification_event(address, first_name=name))

    text, html = parts(wait_mail(smtp_sink, consumer, address).message)
    assert "<script>" not in html and "<b>Bob</b>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;Bob&lt;/b&gt;" in html
    assert name in text  # plain text needs no escaping


def test_the_same_event_delivered_twice_is_mailed_once(events_bus, start_consumer, smtp_sink, deliveries):
    consumer = start_consumer()
    address = unique_address("twice")
    event = verification_event(address)
    events_bus.publish(event)
    events_bus.publish(event)  # e.g. the relay crashed after publishing, before marking the row sent
    sentinel = unique_address("sentinel")
    events_bus.publish(verification_event(sentinel))

    wait_mail(smtp_sink, consumer, sentinel)
    assert len(smtp_sink.mail_to(address)) == 1
    # And again after the first copy was recorded (a redelivery much later):
    events_bus.publish(event)
    sentinel2 = unique_address("sentinel")
    events_bus.publish(verification_event(sentinel2))
    wait_mail(smtp_sink, consumer, sentinel2)
    assert len(smtp_sink.mail_to(address)) == 1
    wait_delivered(deliveries, consumer, event.id)


def test_password_reset_mail(events_bus, start_consumer, smtp_sink):
    consumer = start_consumer()
    address = unique_address("reset")
    url = f"http://127.0.0.1:8001/reset-password?token={uuid.uuid4().hex}"
    event = events_bus.publish(Event("identity.password_reset.requested", {
        "account_id": str(uuid.uuid4()), "email": address, "first_name": "Grace", "reset_url": url,
        "expires_at": "2030-01-02T03:04:05+00:00",
    }))

    message = wait_mail(smtp_sink, consumer, address).message
    assert message["Subject"] == "Reset your password"
    assert message["Message-ID"] == f"<{event['id']}@threshold>"
    text, html = parts(message)
    assert url in text
    assert "RESET MY PASSWORD" in html and f'href="{url}"' in html
    assert "Hi Grace," in text


def test_invitation_mail(events_bus, start_consumer, smtp_sink):
    consumer = start_consumer()
    address = unique_address("invitee")
    url = f"http://127.0.0.1:3000/invitations/{uuid.uuid4()}?token={uuid.uuid4().hex}"
    events_bus.publish(Event("tenancy.invitation.created", {
        "invitation_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()), "workspace_name": "Research & Co",
        "email": address, "inviter_name": "Ada Lovelace", "accept_url": url,
        "expires_at": "2030-01-02T03:04:05+00:00",
    }))

    message = wait_mail(smtp_sink, consumer, address).message
    assert message["Subject"] == "Ada Lovelace invited you to Research & Co"
    text, html = parts(message)
    assert url in text and "Research & Co" in text
    assert "ACCEPT INVITATION" in html and "Research &amp; Co" in html
    assert f'href="{url.replace("&", "&amp;")}"' in html


def test_names_that_read_as_links_are_not_links_in_the_invitation_mail(events_bus, start_consumer, smtp_sink):
    # Events from before the name rule (or from a producer that skipped it) may carry such names: the
    # notifier brackets what would make a mail client link them, in the subject, the text and the HTML.
    consumer = start_consumer()
    address = unique_address("invitee")
    url = f"http://127.0.0.1:3000/invitations/{uuid.uuid4()}?token={uuid.uuid4().hex}"
    events_bus.publish(Event("tenancy.invitation.created", {
        "invitation_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()),
        "workspace_name": "Claim your prize at www.evil.example", "email": address,
        "inviter_name": "https://evil.example/login", "accept_url": url, "expires_at": "2030-01-02T03:04:05+00:00",
    }))

    message = wait_mail(smtp_sink, consumer, address).message
    text, html = parts(message)
    for part in (message["Subject"], text, html):
        assert "evil.example" not in part and "https://evil" not in part and "www.evil" not in part, part
    assert message["Subject"] == ("https[:]//evil[.]example/login invited you to "
                                  "Claim your prize at www[.]evil[.]example")
    assert ('https[:]//evil[.]example/login invited you to join the workspace '
            '"Claim your prize at www[.]evil[.]example"') in text
    assert url in text  # the real link is untouched


@pytest.mark.parametrize("event_type, state", [("identity.mfa.enabled", "on"), ("identity.mfa.disabled", "off")])
def test_mfa_security_notices(events_bus, start_consumer, smtp_sink, event_type, state):
    consumer = start_consumer()
    address = unique_address("mfa")
    events_bus.publish(Event(event_type, {"account_id": str(uuid.uuid4()), "email": address}))

    message = wait_mail(smtp_sink, consumer, address).message
    assert message["Subject"] == f"Two-factor authentication was turned {state}"
    text, html = parts(message)
    assert f"turned {state} for your account {address}" in text
    assert f"<strong>{state}</strong>" in html and address in html


@pytest.mark.parametrize("bad_address", [
    "a@x.com\r\nBcc: b@y.com",
    "a@x.com\nBcc: b@y.com",
    "a@x.com\n",  # a lone trailing newline must not slip past the address check
    "a:b@x.com",  # passes a loose pattern, but is no addr-spec
    "(comment)a@x.com",  # the email package would fold the comment away: not the address asked for
    "a..b@x.com",
    "Someone <a@x.com>",
    "",
    None,
    # addresses plain SMTP cannot carry, or that read like another: the APIs' own policy (shared/addresses.py)
    "jos\u00e9@example.com",
    "\uff41norm@example.com",
    "\u0131norm@example.com",
    "norm@\uff45xample.com",
    '"a b"@example.com',
    '"ab"@example.com',
    "a@[192.0.2.1]",
    "a" * 65 + "@example.com",
    "a@x.com\x85",
])
def test_an_injected_or_malformed_recipient_is_rejected_and_later_mail_flows(
        events_bus, start_consumer, smtp_sink, deliveries, bad_address):
    consumer = start_consumer()
    bad = verification_event("placeholder@example.com")
    bad = Event(bad.type, {**bad.data, "email": bad_address})
    events_bus.publish(bad)
    good = unique_address("after")
    events_bus.publish(verification_event(good))

    wait_mail(smtp_sink, consumer, good)
    assert [m.rcpt_tos for m in smtp_sink.mails] == [(good,)]
    assert smtp_sink.rcpt_attempts == [good]  # the bad one never reached the SMTP server
    assert not deliveries.delivered(bad.id)
    letters = events_bus.take_dead_letters()
    assert [json.loads(body)["id"] for _, body in letters] == [bad.id]
    assert "recipient" in letters[0][0][bus.ERROR_HEADER]


def test_an_internationalised_domain_is_mailed_to_its_ascii_form(events_bus, start_consumer, smtp_sink, deliveries):
    consumer = start_consumer()
    event = verification_event("Ada@B\u00fccher.de")
    events_bus.publish(event)

    mail = wait_mail(smtp_sink, consumer, "ada@xn--bcher-kva.de")
    assert mail.rcpt_tos == ("ada@xn--bcher-kva.de",)
    assert mail.message["To"] == "ada@xn--bcher-kva.de"
    assert smtp_sink.rcpt_attempts == ["ada@xn--bcher-kva.de"]
    wait_delivered(deliveries, consumer, event.id)
    assert events_bus.take_dead_letters() == []


LOCAL_CHARACTERS = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~." + "\u00e9\u0131\uff41\" @"
LABEL_CHARACTERS = string.ascii_letters + string.digits + "-" + "\u00fc\u00e9\u00f1\u00df\u0131\u03b1\u0436\u4e2d\uff45"
CANDIDATES = st.one_of(
    st.emails(),
    st.builds("{}@{}.{}".format,
              st.text(LOCAL_CHARACTERS, min_size=1, max_size=70),
              st.lists(st.text(LABEL_CHARACTERS, min_size=1, max_size=70), min_size=1, max_size=4).map(".".join),
              st.sampled_from(["com", "de", "org", "xn--p1ai", "\u0440\u0444", "COM"])),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.filter_too_much])
@given(candidate=CANDIDATES)
def test_every_address_the_policy_accepts_the_notifier_sends(smtp_sink, candidate):
    """Whatever the APIs would store, the notifier renders and the SMTP server takes, to the same address."""
    try:
        address = addresses.normalise(candidate)
    except addresses.AddressRejected:
        assume(False)
    assert addresses.normalise(address) == address  # what is stored passes again, unchanged
    event = verification_event(candidate)
    before = len(smtp_sink.mails)

    mail = Renderer(MAIL_FROM).render(event.envelope("/test"))
    SmtpSender(smtp_sink.url, 5).send(mail.message, event.id, mail.links)

    assert len(smtp_sink.mails) == before + 1
    received = smtp_sink.mails[-1]
    assert received.rcpt_tos == (address,)
    assert received.message["To"] == address


@pytest.mark.parametrize("poison", [
    {"not": "an event"},
    ["a", "list"],
    {"specversion": "1.0", "id": "x1", "source": "/t", "type": "identity.mfa.enabled", "data": "not an object"},
    {"specversion": "1.0", "id": "x2", "source": "/t", "type": ["identity.mfa.enabled"],
     "data": {"email": "poison@example.com"}},
    {"specversion": "0.3", "id": "x3", "source": "/t", "type": "identity.mfa.enabled",
     "data": {"email": "poison@example.com"}},
    {"specversion": "1.0", "id": 42, "source": "/t", "type": "identity.mfa.enabled",
     "data": {"email": "poison@example.com"}},
    # a known type missing the fields its template needs
    {"specversion": "1.0", "id": "x4", "source": "/t", "type": "identity.email_verification.requested",
     "data": {"email": "poison@example.com"}},
    # an event type that has no mail (routed here by a wrong routing key)
    {"specversion": "1.0", "id": "x5", "source": "/t", "type": "identity.account.registered",
     "data": {"email": "poison@example.com"}},
])
def test_a_poison_message_is_dead_lettered_and_later_mail_flows(events_bus, start_consumer, smtp_sink, poison):
    consumer = start_consumer()
    events_bus.producer.publish(poison, routing_key="identity.mfa.enabled", serializer="json")
    good = unique_address("after-poison")
    events_bus.publish(verification_event(good))

    wait_mail(smtp_sink, consumer, good)
    assert [m.rcpt_tos for m in smtp_sink.mails] == [(good,)]
    letters = events_bus.take_dead_letters()
    assert [json.loads(body) for _, body in letters] == [poison]


def test_a_body_that_is_not_json_is_dead_lettered_and_later_mail_flows(events_bus, start_consumer, smtp_sink):
    consumer = start_consumer()
    events_bus.publish_raw(b"{not json", routing_key="identity.mfa.enabled")
    pickled = pickle.dumps({"email": "pickle@example.com"})
    events_bus.publish_raw(pickled, routing_key="identity.mfa.enabled",
                           content_type="application/x-python-serialize")  # pickle is never accepted
    good = unique_address("after-garbage")
    events_bus.publish(verification_event(good))

    wait_mail(smtp_sink, consumer, good)
    assert [m.rcpt_tos for m in smtp_sink.mails] == [(good,)]
    assert [body for _, body in events_bus.take_dead_letters()] == [b"{not json", pickled]


def test_a_recipient_refused_with_5xx_is_not_retried_and_later_mail_flows(
        events_bus, start_consumer, smtp_sink, deliveries):
    consumer = start_consumer()
    bounced = unique_address("nosuchuser")
    smtp_sink.reject_recipients(bounced)
    refused = events_bus.publish(verification_event(bounced))
    good = unique_address("after-bounce")
    events_bus.publish(verification_event(good))

    wait_mail(smtp_sink, consumer, good)
    assert smtp_sink.refused_recipients == [bounced]  # asked once: a 5xx is final
    assert smtp_sink.mail_to(bounced) == []
    assert not deliveries.delivered(refused["id"])
    letters = events_bus.take_dead_letters()
    assert [json.loads(body)["id"] for _, body in letters] == [refused["id"]]
    assert "550" in letters[0][0][bus.ERROR_HEADER]


def test_a_transient_4xx_is_retried_then_delivered_once(events_bus, start_consumer, smtp_sink, deliveries):
    consumer = start_consumer(retry_delays=(0.05, 0.05, 0.05))
    smtp_sink.defer_next(2)
    address = unique_address("greylisted")
    event = events_bus.publish(verification_event(address))

    wait_mail(smtp_sink, consumer, address)
    sentinel = unique_address("sentinel")
    events_bus.publish(verification_event(sentinel))
    wait_mail(smtp_sink, consumer, sentinel)
    assert smtp_sink.deferred == [(address,), (address,)]
    assert len(smtp_sink.mail_to(address)) == 1
    assert smtp_sink.mail_to(address)[0].message["Message-ID"] == f"<{event['id']}@threshold>"
    wait_delivered(deliveries, consumer, event["id"])
    assert events_bus.take_dead_letters() == []


def test_smtp_refusing_longer_than_every_retry_dead_letters_and_later_mail_flows(
        events_bus, start_consumer, smtp_sink, deliveries):
    consumer = start_consumer(retry_delays=(0.05, 0.05))
    smtp_sink.defer_next(3)  # the first try and both retries
    address = unique_address("gave-up")
    event = events_bus.publish(verification_event(address))

    deadline = time.monotonic() + WAIT
    while not (letters := events_bus.take_dead_letters()):
        consumer.assert_alive()
        assert time.monotonic() < deadline, f"not dead-lettered within {WAIT}s; {smtp_sink.summary()}"
        time.sleep(0.02)
    sentinel = unique_address("sentinel")
    events_bus.publish(verification_event(sentinel))
    wait_mail(smtp_sink, consumer, sentinel)  # and the consumer goes on
    assert smtp_sink.deferred == [(address,)] * 3
    assert smtp_sink.mail_to(address) == []
    assert not deliveries.delivered(event["id"])
    [(headers, body)] = letters
    assert json.loads(body)["id"] == event["id"]
    assert headers[bus.ATTEMPT_HEADER] == 2
    assert "451" in headers[bus.ERROR_HEADER]


class DroppingListener:
    """A TCP server that accepts and at once closes every connection (an SMTP server in trouble)."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:  # closed by close()
                return
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self.socket.close()
        self.thread.join(timeout=WAIT)


def test_smtp_server_in_trouble_then_back_delivers_once(events_bus, start_consumer, deliveries):
    listener = DroppingListener()
    try:
        # Quick first retries (seen below), then long enough ones for the server to come back.
        consumer = start_consumer(sender=SmtpSender(f"smtp://127.0.0.1:{listener.port}", 5),
                                  retry_delays=(0.05, 0.05, 1.0, 2.0, 5.0))
        address = unique_address("down")
        event = events_bus.publish(verification_event(address))
        deadline = time.monotonic() + WAIT
        while listener.accepted < 3:  # it tried, and tried again
            consumer.assert_alive()
            assert time.monotonic() < deadline, f"only {listener.accepted} connection(s) within {WAIT}s"
            time.sleep(0.02)
        assert not deliveries.delivered(event["id"])
    finally:
        listener.close()
    with SmtpSink(port=listener.port) as sink:  # the server is back, on the same port
        wait_mail(sink, consumer, address)
        sentinel = unique_address("sentinel")
        events_bus.publish(verification_event(sentinel))
        wait_mail(sink, consumer, sentinel)
        assert len(sink.mail_to(address)) == 1
    wait_delivered(deliveries, consumer, event["id"])


def test_file_sender_writes_one_eml_per_event(events_bus, start_consumer, deliveries, tmp_path):
    mail_dir = tmp_path / "mail"
    consumer = start_consumer(sender=FileSender(mail_dir))
    address = unique_address("file")
    event = verification_event(address)
    events_bus.publish(event)
    events_bus.publish(event)  # a duplicate writes nothing more
    sentinel = verification_event(unique_address("sentinel"))
    events_bus.publish(sentinel)

    target = mail_dir / f"{sentinel.id}.eml"
    wait_for_path(target)
    assert sorted(p.name for p in mail_dir.iterdir()) == sorted([f"{event.id}.eml", f"{sentinel.id}.eml"])
    message = email.message_from_bytes((mail_dir / f"{event.id}.eml").read_bytes(), policy=email.policy.default)
    assert message["To"] == address
    assert message["Message-ID"] == f"<{event.id}@threshold>"
    text, html = parts(message)
    assert event.data["verification_url"] in text
    assert "VERIFY MY EMAIL" in html and event.data["verification_url"] in html
    wait_delivered(deliveries, consumer, event.id)


def wait_for_path(path: Path, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout}s"
        time.sleep(0.02)
