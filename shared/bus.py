"""The bus: connection settings and the topology every producer and consumer declares.

Production runs RabbitMQ (`amqp://`); the embedded default is kombu's filesystem transport under
`var/bus`, which needs no server and still routes a topic exchange between processes (its bindings
live in files). `memory://` is for tests where the broker is not the thing under test.
"""
from __future__ import annotations

from pathlib import Path

from kombu import Connection, Exchange, Queue

EXCHANGE = Exchange("threshold.events", type="topic", durable=True)

NOTIFIER_QUEUE_NAME = "notifier.mail"
#: Event types the notifier turns into mail; its queue is bound to each.
NOTIFIER_EVENT_TYPES = (
    "identity.email_verification.requested",
    "identity.password_reset.requested",
    "identity.mfa.enabled",
    "identity.mfa.disabled",
    "tenancy.invitation.created",
)


def notifier_queues() -> list[Queue]:
    """One queue, one binding per event type (kombu expresses a binding as a same-named Queue)."""
    return [
        Queue(NOTIFIER_QUEUE_NAME, exchange=EXCHANGE, routing_key=event_type, durable=True)
        for event_type in NOTIFIER_EVENT_TYPES
    ]


def connect(url: str, var_dir: Path) -> Connection:
    """A kombu connection (lazy: nothing happens until it is used)."""
    if url.startswith("filesystem"):
        folder = var_dir / "bus"
        for sub in ("data", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return Connection(
            "filesystem://",
            transport_options={
                "data_folder_in": str(folder / "data"),
                "data_folder_out": str(folder / "data"),
                "control_folder": str(folder / "control"),
                "store_processed": False,
                "polling_interval": 0.05,
            },
        )
    options = {"confirm_publish": True} if url.startswith(("amqp", "pyamqp")) else {}
    return Connection(url, transport_options=options, connect_timeout=5, heartbeat=0)


def declare_topology(connection: Connection) -> None:
    """Exchange and every consumer queue, so nothing published before a consumer's first start is lost."""
    channel = connection.default_channel
    EXCHANGE(channel).declare()
    for queue in notifier_queues():
        queue(channel).declare()
