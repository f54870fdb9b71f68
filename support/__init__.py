"""What the tests and the benchmark both need to run Threshold for real on loopback: free ports and port
probes (`ports`), a child process in a process group of its own (`processes`), `migrate` and the
PostgreSQL admin connection (`databases`), a RabbitMQ virtual host (`rabbitmq`), an SMTP sink (`smtp`)
and a reader of any service's outbox (`outbox`).

Not part of any service and not shipped (setuptools' packages.find takes shared* and services* only):
`python -m bench` and pytest import it from the repository root.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository: where `python -m services.<name>` runs
