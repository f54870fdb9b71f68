"""An SMTP sink for the event-path benchmark: aiosmtpd on a free loopback port, in a thread of the
benchmark process, noting when each mail arrived for each recipient (`time.monotonic()`, the clock the
load driver stamps its requests with). It keeps no message bodies and never refuses anything.

    with Sink() as sink:
        ...  # SMTP_URL=sink.url
        sink.wait_for(addresses, timeout=30)
        sink.arrivals("ada@example.com")  # [monotonic seconds, ...]: more than one is a duplicate
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from aiosmtpd.controller import Controller

from bench.servers import free_port

HOST = "127.0.0.1"


class _Handler:
    def __init__(self, sink: Sink):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        arrived = time.monotonic()  # the whole message is in: the moment a real server would take it
        with self.sink._condition:
            for recipient in envelope.rcpt_tos:
                self.sink._arrivals.setdefault(recipient.lower(), []).append(arrived)
            self.sink._mails += 1
            self.sink._condition.notify_all()
        return "250 2.0.0 Message accepted for delivery"


class Sink:
    """aiosmtpd started on `with` and stopped on leaving it, whatever happens."""

    def __init__(self, host: str = HOST):
        self.host = host
        self.port: int | None = None
        self._arrivals: dict[str, list[float]] = {}
        self._mails = 0
        self._condition = threading.Condition()
        self._controller: Controller | None = None

    def __enter__(self) -> Sink:
        last_error: Exception | None = None
        for _ in range(5):  # free_port() can race with another process taking the port
            port = free_port()
            controller = Controller(_Handler(self), hostname=self.host, port=port, ready_timeout=10)
            try:
                controller.start()
            except Exception as exc:  # port taken meanwhile, or the loop did not come up: try another
                last_error = exc
                try:
                    controller.stop()
                except Exception:  # a controller that never started may fail to stop; nothing to clean
                    pass
                continue
            self._controller, self.port = controller, port
            return self
        raise RuntimeError(f"could not start the SMTP sink: {last_error!r}")

    def __exit__(self, *exc) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def mails(self) -> int:
        """Mails accepted so far."""
        with self._condition:
            return self._mails

    def arrivals(self, address: str) -> list[float]:
        """When mails to `address` arrived (`time.monotonic()`), in order."""
        with self._condition:
            return list(self._arrivals.get(address.lower(), ()))

    def first_arrival(self) -> float | None:
        with self._condition:
            return min((times[0] for times in self._arrivals.values()), default=None)

    def wait_for(self, addresses: Iterable[str], timeout: float) -> set[str]:
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
