"""Threshold's benchmarks: `python -m bench` (or `make bench`) writes docs/performance.md.

Everything runs on loopback, for a bounded time, against real servers started and stopped here:
identity (gunicorn, sync and gthread workers) against fastapi-users and panva's oidc-provider (installed
into var/bench-peers/), interleaved round by round per server CPU-second (`ab.py`, `compare.py`); the
argon2id verify rate and the floors of the token endpoints (`floor.py`) in the same rounds; memory per
worker; `make run`'s footprint; the event path (sign-up to mail through the outbox, RabbitMQ and the notifier).
"""
