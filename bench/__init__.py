"""Threshold's benchmarks: `python -m bench` (or `make bench`) writes docs/performance.md.

Everything runs on loopback, for a bounded time, against real gunicorn processes started and
stopped here: argon2id verify rate vs sign-in throughput, a bare flask-smorest endpoint vs refresh
and GET /v1/me, the peak RSS of a worker, and the event path: sign-up to mail through the outbox,
RabbitMQ and the notifier (latency at a fixed sign-up rate, and mails per second through one consumer).
"""
