"""Identity under load: real gunicorn (`python -m services.identity serve`, one worker) on a fresh
database, accounts made through the API, then sign-in, refresh and GET /v1/me."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bench import load, servers

PASSWORD = "bench-Correct-Horse-42"
VERIFICATION_EVENT = "identity.email_verification.requested"


@dataclass
class Figures:
    sign_in: servers.Phase
    refresh: servers.Phase
    me: servers.Phase
    boot_rss_mb: float  # the worker's VmHWM once it answers, before any request
    peak_rss_mb: float  # the worker's VmHWM after all three loads
    rss_mb: float  # its VmRSS then
    workers: int


def environment(database_url: str, var_dir: Path, port: int) -> dict[str, str]:
    return dict(
        os.environ,
        APP_ENV="development",
        IDENTITY_DATABASE_URL=database_url,
        VAR_DIR=str(var_dir),
        IDENTITY_PORT=str(port),
        WEB_CONCURRENCY="1",
        IP_RATE_LIMIT_PER_MINUTE="100000000",  # one client address sends everything here
        PYTHONUNBUFFERED="1",
    )


def verification_tokens(database_url: str) -> dict[str, str]:
    """email -> token, from the verification events in the outbox (what the mailer would send)."""
    from sqlalchemy import select

    from services.identity.models import outbox
    from shared.database import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            envelopes = conn.execute(select(outbox.c.envelope).where(outbox.c.type == VERIFICATION_EVENT)).scalars()
            tokens = {}
            for envelope in envelopes:
                data = json.loads(envelope)["data"]
                tokens[data["email"]] = parse_qs(urlsplit(data["verification_url"]).query)["token"][0]
            return tokens
    finally:
        engine.dispose()


def create_accounts(port: int, database_url: str, count: int) -> list[str]:
    """Sign up `count` accounts through the API and confirm each address with its mailed token."""
    client = load.Client(port)
    emails = [f"bench-{os.getpid()}-{number}@example.com" for number in range(count)]
    try:
        for email in emails:
            status, body = client.call("POST", "/v1/accounts", {"email": email, "password": PASSWORD,
                                                               "first_name": "Bench", "last_name": "Mark"})
            if status != 201:
                raise RuntimeError(f"sign-up answered {status}: {body}")
        tokens = verification_tokens(database_url)
        for email in emails:
            status, body = client.call("POST", "/v1/email-verifications/confirm", {"token": tokens[email]})
            if status != 200 or not body.get("email_verified"):
                raise RuntimeError(f"verification answered {status}: {body}")
    finally:
        client.close()
    return emails


def sign_in(client: load.Client, email: str) -> tuple[bool, dict]:
    status, body = client.call("POST", "/v1/sessions", {"email": email, "password": PASSWORD})
    return status == 200, body


def run(database_url: str, var_dir: Path, cpu: int | None, clients: int, sign_in_seconds: float, seconds: float,
        warmup: float, windows: int = 1) -> Figures:
    port = servers.free_port()
    env = environment(database_url, var_dir, port)
    migration = subprocess.run([sys.executable, "-m", "services.identity", "migrate"], env=env, cwd=servers.ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if migration.returncode != 0:
        raise RuntimeError(f"migrate failed ({migration.returncode}):\n{migration.stderr[-2000:]}")
    argv = [sys.executable, "-m", "services.identity", "serve"]
    with servers.Server(argv, env, port, var_dir / "identity.log", cpu) as server:
        boot = server.sample().workers.values()
        # Several accounts per client, taken in turn: no account signs in twice in a row.
        emails = create_accounts(port, database_url, clients * 4)

        def sign_in_step(index):
            mine = itertools.cycle(emails[index::clients])
            return lambda client: sign_in(client, next(mine))[0]

        sign_in_phase = servers.measure(server, sign_in_step, clients, sign_in_seconds, warmup, windows)

        pairs = []
        client = load.Client(port)
        try:
            for email in emails[:clients]:
                ok, pair = sign_in(client, email)
                if not ok:
                    raise RuntimeError(f"sign-in failed: {pair}")
                pairs.append(pair)
        finally:
            client.close()

        refresh_phase = servers.measure(server, lambda index: load.rotating("/v1/tokens/refresh",
                                                                            pairs[index]["refresh_token"]),
                                        clients, seconds, warmup, windows)

        def me_step(index):
            token = pairs[index]["access_token"]
            return lambda client: client.call("GET", "/v1/me", token=token)[0] == 200

        me_phase = servers.measure(server, me_step, clients, seconds, warmup, windows)
        phases = (sign_in_phase, refresh_phase, me_phase)
        final = server.sample().workers.values()
        return Figures(*phases, boot_rss_mb=max(worker.peak_rss_mb for worker in boot),
                       peak_rss_mb=max([phase.peak_rss_mb for phase in phases] + [w.peak_rss_mb for w in final]),
                       rss_mb=max(worker.rss_mb for worker in final), workers=len(final))
