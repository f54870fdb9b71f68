"""Listing and replaying the notifier's dead letters (the operator's side of the dead-letter queue)."""
from __future__ import annotations

import json
from dataclasses import dataclass

from kombu import Connection, Producer

from shared import bus
from shared.bus import ConsumerQueues

MAX_BATCH = 1000


@dataclass(frozen=True)
class DeadLetter:
    event_id: str | None
    event_type: str | None
    error: str
    attempts: int


def _describe(message) -> DeadLetter:
    headers = message.headers or {}
    event_id = event_type = None
    try:
        body = json.loads(message.body)
        if isinstance(body, dict):
            event_id, event_type = body.get("id"), body.get("type")
    except (ValueError, TypeError, UnicodeDecodeError):
        pass
    return DeadLetter(event_id, event_type, str(headers.get(bus.ERROR_HEADER, "rejected by the broker")),
                      int(headers.get(bus.ATTEMPT_HEADER, 0)))


def list_dead_letters(connection: Connection, queues: ConsumerQueues, limit: int = 100) -> list[DeadLetter]:
    """Read without removing: every message taken is returned to the queue when the channel closes."""
    channel = connection.channel()
    try:
        bus.declare_topology(channel, (queues,))
        queue = queues.dead()(channel)
        found = []
        for _ in range(min(limit, MAX_BATCH)):
            message = queue.get(no_ack=False)
            if message is None:
                break
            found.append(_describe(message))
        return found
    finally:
        channel.close()


def replay(connection: Connection, queues: ConsumerQueues, event_id: str | None = None) -> int:
    """Put dead letters (all, or the one with `event_id`) back on the consumer's queue with a fresh
    retry budget. Each is published (and confirmed) before it leaves the dead-letter queue."""
    channel = connection.channel()
    publisher = connection.clone()
    replayed = 0
    try:
        bus.declare_topology(channel, (queues,))
        producer = Producer(publisher.default_channel)
        queue = queues.dead()(channel)
        for _ in range(MAX_BATCH):
            message = queue.get(no_ack=False)
            if message is None:
                break
            if event_id is not None and _describe(message).event_id != event_id:
                continue  # left unacked: back in the queue when the channel closes
            headers = {k: v for k, v in (message.headers or {}).items()
                       if k not in (bus.ATTEMPT_HEADER, bus.ERROR_HEADER)}
            body = message.body.encode() if isinstance(message.body, str) else message.body
            producer.publish(body, exchange="", routing_key=queues.name, headers=headers, delivery_mode=2,
                             content_type=message.content_type or "application/octet-stream",
                             content_encoding=message.content_encoding or "binary")
            message.ack()
            replayed += 1
    finally:
        channel.close()
        publisher.release()
    return replayed
