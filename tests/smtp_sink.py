"""A real SMTP server for tests: aiosmtpd on a free loopback port, keeping every mail it accepts.

It can also misbehave the way real servers do:

* `defer_next(n)` answers the next `n` DATA commands with a transient `451` (greylisting, a full
  queue), so a sender must retry;
* `reject_recipients(...)` answers `550` at RCPT for those addresses (no such user), which a
  sender must treat as final;
* `hold()` keeps deliveries waiting at RCPT, before any mail is transferred, until `release()`
  (a slow server, and a window in which to kill the sender).

    with SmtpSink() as sink:
        ...  # point the code under test at sink.url
        mail = sink.wait_for_mail("ada@example.com")

Waiting is bounded polling: `wait_for_mail` and `wait_until` raise AssertionError on timeout, with
what the server saw so far in the message.
"""
from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.backends import free_port

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMail:
    """One mail the sink accepted (answered 250 to DATA)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message: EmailMessage = field(repr=False)


class _Handler:
    """aiosmtpd hooks; runs on the controller's event loop thread, so state is under a lock."""

    def __init__(self, sink: SmtpSink):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.sink._condition:
            self.sink.rcpt_attempts.append(address)
            self.sink._condition.notify_all()
        while self.sink._held.is_set():  # hold(): keep the client waiting here, without blocking the loop
            await asyncio.sleep(0.05)
        with self.sink._condition:
            if address.lower() in self.sink._rejected:
                self.sink.refused_recipients.append(address)
                self.sink._condition.notify_all()
                return f"550 5.1.1 <{address}>: Recipient address rejected: no such user"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.sink._condition:
            if self.sink._defer_remaining > 0:
                self.sink._defer_remaining -= 1
                self.sink.deferred.append(tuple(envelope.rcpt_tos))
                self.sink._condition.notify_all()
                return "451 4.3.0 Temporary failure, try again later"
            data = envelope.original_content or envelope.content
            message = email.message_from_bytes(data, policy=email.policy.default)
            self.sink.mails.append(ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), data, message))
            self.sink._condition.notify_all()
        return "250 2.0.0 Message accepted for delivery"


class SmtpSink:
    """A started-on-demand aiosmtpd server; use as a context manager so it always stops."""

    def __init__(self, host: str = HOST, port: int | None = None):
        """`port=None` picks a free one; a given port is tried once (e.g. to come back where one was)."""
        self.host = host
        self.port = port
        self.mails: list[ReceivedMail] = []
        self.rcpt_attempts: list[str] = []
        self.refused_recipients: list[str] = []
        self.deferred: list[tuple[str, ...]] = []
        self._rejected: set[str] = set()
        self._defer_remaining = 0
        self._condition = threading.Condition()
        self._held = threading.Event()
        self._controller: Controller | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> SmtpSink:
        last_error: Exception | None = None
        for _ in range(1 if self.port else 5):  # free_port() can race with another process taking the port
            port = self.port or free_port()
            controller = Controller(_Handler(self), hostname=self.host, port=port, ready_timeout=10)
            try:
                controller.start()
            except Exception as exc:  # port taken meanwhile, or the loop did not come up: try another
                last_error = exc
                try:
                    controller.stop()
                except Exception:  # stopping a controller that never started may fail; nothing to clean
                    pass
                continue
            self._controller, self.port = controller, port
            return self
        raise RuntimeError(f"could not start the SMTP sink: {last_error!r}")

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """What SMTP_URL (or SmtpSender) should be given."""
        return f"smtp://{self.host}:{self.port}"

    # -- behaviour -------------------------------------------------------------------------------

    def defer_next(self, count: int) -> None:
        """Answer the next `count` DATA commands with 451 (transient)."""
        with self._condition:
            self._defer_remaining = count

    def hold(self) -> None:
        """Keep every new delivery waiting at RCPT (before any mail is transferred) until release()."""
        self._held.set()

    def release(self) -> None:
        self._held.clear()

    def reject_recipients(self, *addresses: str) -> None:
        """Answer 550 at RCPT for these addresses (permanent)."""
        with self._condition:
            self._rejected.update(address.lower() for address in addresses)

    # -- what was received -------------------------------------------------------------------------

    def mail_to(self, address: str) -> list[ReceivedMail]:
        """Accepted mails whose SMTP envelope includes `address`."""
        address = address.lower()
        with self._condition:
            return [mail for mail in self.mails if address in (rcpt.lower() for rcpt in mail.rcpt_tos)]

    def wait_until(self, predicate, timeout: float = 15.0, what: str = "the condition") -> None:
        """Block until `predicate()` is true (re-checked whenever the server records something)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"SMTP sink: timed out after {timeout}s waiting for {what}; "
                                         f"{self.summary()}")
                # Wake up now and then too, in case the predicate depends on something else.
                self._condition.wait(min(remaining, 0.2))

    def wait_for_mail(self, address: str, count: int = 1, timeout: float = 15.0) -> ReceivedMail:
        """Wait until at least `count` mails to `address` arrived; returns the last one."""
        self.wait_until(lambda: len(self.mail_to(address)) >= count, timeout, f"{count} mail(s) to {address}")
        return self.mail_to(address)[-1]

    def summary(self) -> str:
        return (f"accepted={[m.rcpt_tos for m in self.mails]} refused_rcpt={self.refused_recipients} "
                f"deferred={self.deferred}")
