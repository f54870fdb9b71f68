"""A RabbitMQ virtual host of a test's or a benchmark run's own on the loopback broker, so its queues
never meet another's."""
from __future__ import annotations

import subprocess
from functools import cache

from support.ports import port_open

PORT = 5672


@cache
def rabbitmq_available() -> bool:
    """Whether RabbitMQ answers on loopback (asked once per process)."""
    return port_open(PORT)


class VhostError(RuntimeError):
    """rabbitmqctl failed."""


class RabbitVhost:
    """`create()` makes the virtual host (guest may use it), `delete()` removes it; as a context manager,
    deleted on leaving `with`."""

    def __init__(self, name: str):
        self.name = name

    @staticmethod
    def _ctl(*args: str) -> None:
        result = subprocess.run(["rabbitmqctl", "-q", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, timeout=60)
        if result.returncode != 0:
            raise VhostError(f"rabbitmqctl {args[0]} failed ({result.returncode}): {result.stderr.strip()[-500:]}")

    def create(self) -> RabbitVhost:
        self._ctl("add_vhost", self.name)
        try:
            self._ctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        except BaseException:
            self._ctl("delete_vhost", self.name)
            raise
        return self

    def delete(self) -> None:
        self._ctl("delete_vhost", self.name)

    def url(self, port: int = PORT) -> str:
        """The broker URL of this virtual host; `port` another way in (a TCP proxy in front of the broker)."""
        return f"amqp://guest:guest@127.0.0.1:{port}/{self.name}"

    def __enter__(self) -> RabbitVhost:
        return self.create()

    def __exit__(self, *exc_info: object) -> None:
        self.delete()
