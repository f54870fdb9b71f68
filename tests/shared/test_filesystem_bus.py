"""The embedded bus (`make run`'s default, kombu's filesystem transport made atomic): a message is
never read before it is whole, never read twice, and concurrent bindings all survive.

kombu's own filesystem transport fails the first test: its reader takes files the writer has not
filled yet (lost messages, JSONDecodeError in the consumer), which once stopped a test stack's mailer.
"""
from __future__ import annotations

import shutil
import threading

from kombu import Exchange, Queue

from shared import bus

MESSAGES = 1500
EXCHANGE = Exchange("race", type="topic", durable=True)


def _drain(connection, queue: Queue, got: list, errors: list, publishing: threading.Event) -> None:
    with connection.SimpleQueue(queue) as simple:
        while True:
            try:
                message = simple.get(timeout=0.5)
            except simple.Empty:
                if not publishing.is_set():
                    return
                continue
            except Exception as exc:  # noqa: BLE001 - the failure under test is any error at all
                errors.append(repr(exc))
                continue
            got.append(message.payload["n"])
            message.ack()


def test_two_consumers_racing_a_publisher_get_every_message_once(tmp_path):
    queue = Queue("race.q", EXCHANGE, routing_key="race.#")
    with bus.connect("filesystem://", tmp_path) as setup:
        queue(setup.default_channel).declare()
    publishing = threading.Event()
    publishing.set()
    got: list[int] = []
    errors: list[str] = []
    consumers = [bus.connect("filesystem://", tmp_path) for _ in range(2)]
    for consumer in consumers:  # polling without a pause: the readers list the folder as the writer fills it
        consumer.transport_options["polling_interval"] = 0
    threads = [threading.Thread(target=_drain, args=(c, queue, got, errors, publishing)) for c in consumers]
    for thread in threads:
        thread.start()
    with bus.connect("filesystem://", tmp_path) as publisher:
        producer = publisher.Producer()
        for n in range(MESSAGES):  # big bodies widen the window between a file's creation and its last byte
            producer.publish({"n": n, "pad": "x" * 20_000}, exchange=EXCHANGE, routing_key="race.one")
    publishing.clear()
    for thread in threads:
        thread.join(timeout=60)
    for consumer in consumers:
        consumer.release()
    assert errors == []
    assert sorted(got) == list(range(MESSAGES))


def test_bindings_declared_at_once_from_many_connections_all_route(tmp_path):
    queues = [Queue(f"bind.{n}", EXCHANGE, routing_key="bind.#") for n in range(12)]
    failures: list[str] = []

    def declare(queue: Queue) -> None:
        try:
            with bus.connect("filesystem://", tmp_path) as connection:
                queue(connection.default_channel).declare()
        except Exception as exc:  # noqa: BLE001
            failures.append(repr(exc))

    threads = [threading.Thread(target=declare, args=(queue,)) for queue in queues]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    with bus.connect("filesystem://", tmp_path) as connection:
        connection.Producer().publish({"hello": 1}, exchange=EXCHANGE, routing_key="bind.any")
        for queue in queues:
            with connection.SimpleQueue(queue) as simple:
                message = simple.get(timeout=5)
                message.ack()
                assert message.payload == {"hello": 1}, queue.name
    assert not list((tmp_path / "bus" / "data").iterdir())  # nothing left behind: no part or claimed files


def test_a_binding_declared_again_after_the_bus_folder_went_is_written_again(tmp_path):
    # kombu remembers, once per process, the bindings it declared and skips declaring them again; here
    # they live in files, which can go (the folder removed under a running process). A loop that starts
    # again declares its queues again, and that must lay the bindings out anew.
    queue = Queue("again.mail", Exchange("again", type="topic", durable=True), routing_key="again.#")
    folder = tmp_path / "first"
    with bus.connect("filesystem://", folder) as connection:
        queue(connection.default_channel).declare()
    shutil.rmtree(folder / "bus")

    with bus.connect("filesystem://", folder) as connection:
        queue(connection.default_channel).declare()
        connection.Producer().publish({"hello": 2}, exchange=queue.exchange, routing_key="again.any")
        with connection.SimpleQueue(queue) as simple:
            message = simple.get(timeout=5)
            message.ack()
    assert message.payload == {"hello": 2}
