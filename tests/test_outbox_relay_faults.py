"""An outbox relay as a real process (`python -m services.identity relay`) while its PostgreSQL database
goes away and comes back (connections refused, every open one ended, as in a restart or failover):
it logs, backs off and goes on, and publishes what is committed after the database returned."""
from __future__ import annotations

import os
import uuid

import pytest
from kombu import Connection

from services.notifier.subscriptions import mail_queues
from shared import bus
from support.databases import postgres_available
from tests import backends
from tests.conftest import identity_env
from tests.processes import Processes, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.slow]


def test_the_relay_outlives_a_database_outage_and_publishes_afterwards(databases, rabbit_vhost, tmp_path, clock):
    from services.identity.app import create_app
    from services.identity.settings import Settings

    backends.require(postgres_available(), "PostgreSQL")
    url = databases.fresh("postgres", "services.identity", disposable=True)
    env = identity_env(url, tmp_path, BROKER_URL=rabbit_vhost.url())
    processes = Processes(tmp_path, {**os.environ, **env, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"})
    with Connection(rabbit_vhost.url()) as conn:
        bus.declare_topology(conn, (mail_queues(),))  # notifier.mail exists before anything is published

    def mail_queue_depth() -> int:
        with Connection(rabbit_vhost.url()) as conn:
            return conn.default_channel.queue_declare(mail_queues().name, passive=True).message_count

    def sign_up() -> None:
        # A fresh app each time: the outage ends every pooled connection, the app's as well.
        client = create_app(Settings.from_env(env), clock=clock).test_client()
        response = client.post("/v1/accounts", json={"email": f"relay-{uuid.uuid4().hex[:8]}@example.com",
                                                     "password": "correct horse battery", "first_name": "Ada",
                                                     "last_name": "L"})
        assert response.status_code == 201, response.get_json()

    try:
        relay = processes.start("relay", "services.identity", "relay")
        sign_up()
        wait_for(lambda: mail_queue_depth() == 1, what="the first verification event on the bus")

        backends.refuse_connections(url)
        wait_for(lambda: "publish failed" in processes.log("relay") or relay.poll() is not None,
                 what="the relay to hit the outage")
        assert relay.poll() is None, processes.log("relay")

        backends.allow_connections(url)
        sign_up()
        wait_for(lambda: mail_queue_depth() == 2, timeout=60, what="the event committed after the outage")
        assert relay.poll() is None, processes.log("relay")
    finally:
        processes.stop_all()
        backends.allow_connections(url)
        databases.drop(url)
