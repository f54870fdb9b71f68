"""A real SMTP server for tests and the benchmark: aiosmtpd on a free loopback port, in a thread of the
calling process, keeping every mail it accepts and noting when each arrived for each recipient
(`time.monotonic()`, the clock the benchmark's load driver stamps its requests with). With
`keep_mail=False` (the benchmark) it keeps only those arrival times, not the messages.

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
        sink.arrivals("ada@example.com")  # [monotonic seconds, ...]: more than one is a duplicate

Waiting is bounded polling: `wait_for_mail` and `wait_until` raise AssertionError on timeout, with
what the server saw so far in the message; `wait_for_arrivals` returns the addresses still waited for.
"""
from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from support.ports import HOST, free_port


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
        arrived = time.monotonic()  # the whole message is in: the moment a real server would take it
        with self.sink._condition:
            if self.sink._defer_remaining > 0:
                self.sink._defer_remaining -= 1
                self.sink.deferred.append(tuple(envelope.rcpt_tos))
                self.sink._condition.notify_all()
                return "451 4.3.0 Temporary failure, try again later"
            for recipient in envelope.rcpt_tos:
                self.sink._arrivals.setdefault(recipient.lower(), []).append(arrived)
            self.sink._accepted += 1
            if self.sink.keep_mail:
                data = envelope.original_content or envelope.content
                message = email.message_from_bytes(data, policy=email.policy.default)
                self.sink.mails.append(ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), data, message))
            self.sink._condition.notify_all()
        return "250 2.0.0 Message accepted for delivery"


class SmtpSink:
    """A started-on-demand aiosmtpd server; use as a context manager so it always stops."""

    def __init__(self, host: str = HOST, port: int | None = None, keep_mail: bool = True):
        """`port=None` picks a free one; a given port is tried once (e.g. to come back where one was).
        `keep_mail=False` keeps no message (`mails` stays empty), only when each arrived for whom: the
        benchmark's sink, which should spend no CPU parsing thousands of mails."""
        self.host = host
        self.port = port
        self.keep_mail = keep_mail
        self.mails: list[ReceivedMail] = []
        self.rcpt_attempts: list[str] = []
        self.refused_recipients: list[str] = []
        self.deferred: list[tuple[str, ...]] = []
        self._rejected: set[str] = set()
        self._defer_remaining = 0
        self._arrivals: dict[str, list[float]] = {}  # recipient, lower-cased -> time.monotonic() of each mail
        self._accepted = 0
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

    @property
    def accepted(self) -> int:
        """Mails accepted so far (kept or not)."""
        with self._condition:
            return self._accepted

    def arrivals(self, address: str) -> list[float]:
        """When mails to `address` arrived (`time.monotonic()`), in order."""
        with self._condition:
            return list(self._arrivals.get(address.lower(), ()))

    def first_arrival(self) -> float | None:
        with self._condition:
            return min((times[0] for times in self._arrivals.values()), default=None)

    def wait_for_arrivals(self, addresses: Iterable[str], timeout: float) -> set[str]:
        """Wait until a mail to each address arrived, at most `timeout` seconds; returns those still missing."""
        wanted = {address.lower() for address in addresses}
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                missing = wanted - self._arrivals.keys()
                remaining = deadline - time.monotonic()
                if not missing or remaining <= 0:
                    return missing
                self._condition.wait(min(remaining, 0.5))

    def summary(self) -> str:
        return (f"accepted={[m.rcpt_tos for m in self.mails]} refused_rcpt={self.refused_recipients} "
                f"deferred={self.deferred}")
