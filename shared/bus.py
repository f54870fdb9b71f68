"""The bus: connections and the whole topology, declared by every producer and consumer alike.

- `threshold.events`: durable topic exchange; routing key = event type; CloudEvents JSON bodies.
- Each consumer owns a durable queue bound to the types it handles (the notifier: `notifier.mail`).
- Retries: a failed message is republished to `threshold.retry`, landing in `<queue>.retry.<delay>s`,
  a queue whose TTL is that delay and which dead-letters back into the consumer's queue through the
  default exchange. (Named by delay: changing the delays declares new queues instead of clashing
  with the arguments of existing ones.) Delays grow; after the last one the
  message goes to `<queue>.dead` through `threshold.dead`, where an operator can list and replay it.

Production runs RabbitMQ (`amqp://`). The embedded default is kombu's filesystem transport under
`var/bus`, made atomic by `shared.filesystem_transport`: no server, and a topic exchange still routes
between processes (its bindings live in files); it has no TTL or dead-lettering, so there a consumer
waits out a retry delay itself.
`memory://` is for tests where the broker is not the thing under test.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kombu import Connection, Exchange, Queue, binding

from shared import filesystem_transport

EXCHANGE = Exchange("threshold.events", type="topic", durable=True)
RETRY_EXCHANGE = Exchange("threshold.retry", type="direct", durable=True)
DEAD_LETTER_EXCHANGE = Exchange("threshold.dead", type="direct", durable=True)
ATTEMPT_HEADER = "x-threshold-attempt"
ERROR_HEADER = "x-threshold-error"


@dataclass(frozen=True)
class ConsumerQueues:
    """A consumer's queue, its retry queues (one per delay) and its dead-letter queue."""

    name: str
    event_types: tuple[str, ...]
    retry_delays: tuple[float, ...]
    # Every process must declare a queue with the same arguments; BUS_QUEUE_TYPE=quorum (the settings'
    # bus_queue_type) matches queues pre-declared as quorum queues (deploy/rabbitmq/definitions.json).
    queue_type: str = "classic"

    def _arguments(self, **arguments) -> dict:
        return {**arguments, "x-queue-type": self.queue_type} if self.queue_type != "classic" else arguments

    def main(self) -> Queue:
        return Queue(
            self.name,
            bindings=[binding(EXCHANGE, routing_key=event_type) for event_type in self.event_types],
            durable=True,
            # Whatever the broker itself drops (a reject without requeue) lands in the dead letters.
            queue_arguments=self._arguments(**{"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
                                               "x-dead-letter-routing-key": self.dead_routing_key}),
        )

    def retry_routing_key(self, attempt: int) -> str:
        return f"{self.name}.retry.{self.retry_delays[attempt]:g}s"

    def retry(self, attempt: int) -> Queue:
        return Queue(
            self.retry_routing_key(attempt),
            exchange=RETRY_EXCHANGE,
            routing_key=self.retry_routing_key(attempt),
            durable=True,
            queue_arguments=self._arguments(**{"x-message-ttl": int(self.retry_delays[attempt] * 1000),
                                               "x-dead-letter-exchange": "",
                                               "x-dead-letter-routing-key": self.name}),
        )

    @property
    def dead_routing_key(self) -> str:
        return f"{self.name}.dead"

    def dead(self) -> Queue:
        return Queue(self.dead_routing_key, exchange=DEAD_LETTER_EXCHANGE, routing_key=self.dead_routing_key,
                     durable=True, queue_arguments=self._arguments() or None)

    def all(self) -> list[Queue]:
        return [self.main(), *(self.retry(n) for n in range(len(self.retry_delays))), self.dead()]


def supports_dead_lettering(connection: Connection) -> bool:
    """True on RabbitMQ: TTL and dead-letter exchanges work there and nowhere else we run."""
    return connection.transport_cls in ("amqp", "pyamqp", "amqps") or connection.transport.driver_type == "amqp"


def connect(url: str, var_dir: Path) -> Connection:
    """A kombu connection (lazy: nothing happens until it is used). Publishes wait for confirms."""
    if url.startswith("filesystem"):
        folder = var_dir / "bus"
        for sub in ("data", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return Connection(
            transport=filesystem_transport.Transport,
            transport_options={
                "data_folder_in": str(folder / "data"),
                "data_folder_out": str(folder / "data"),
                "control_folder": str(folder / "control"),
                "polling_interval": 0.05,
            },
        )
    options = {"confirm_publish": True} if url.startswith(("amqp", "pyamqp")) else {}
    return Connection(url, transport_options=options, connect_timeout=5, heartbeat=0)


def declare_topology(target, consumers: tuple[ConsumerQueues, ...]) -> None:
    """The exchanges and the given consumers' queues (on a channel, or a connection's default channel).
    A producer passes the queues of the consumers it feeds, so nothing published before a consumer's
    first start is lost."""
    channel = getattr(target, "default_channel", target)
    for exchange in (EXCHANGE, RETRY_EXCHANGE, DEAD_LETTER_EXCHANGE):
        exchange(channel).declare()
    for consumer in consumers:
        for queue in consumer.all():
            queue(channel).declare()
