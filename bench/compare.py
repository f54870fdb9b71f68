"""The judged comparisons on one database: identity (gunicorn's sync worker and its threaded keep-alive
worker) against fastapi-users and panva's oidc-provider, the argon2id verify rate and the floors of the
token endpoints (bench/floor.py), every server pinned to one core, interleaved round by round (bench/ab.py);
then each server's memory."""
from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench import ab, floor, identity, load, servers
from bench.ab import Ratio
from bench.peers import fastapi_users_peer as fastapi_users
from shared.config import DEVELOPMENT_SECRET
from support.databases import migrate
from support.ports import free_port

if TYPE_CHECKING:
    from bench.peers.oidc_provider import OidcProvider

SYNC, KEEP = "Threshold sync", "Threshold gthread"
OP_SYNC, OP_KEEP = "Threshold OP sync", "Threshold OP gthread"
FASTAPI_USERS, OIDC_PROVIDER = "fastapi-users", "oidc-provider"
VERIFY = "argon2id verify"
SIGN_IN_FLOOR, REFRESH_FLOOR = "sign-in floor", "refresh floor"
CREDENTIALS_FLOOR, EXCHANGE_FLOOR = "client credentials floor", "code exchange floor"


@dataclass(frozen=True)
class Settings:
    clients: int
    rounds: int
    seconds: float
    sign_in_seconds: float
    warmup: float
    codes: int  # at most this many authorization codes minted for one window
    warm_round: float = 0.0  # seconds of a first, unmeasured window per side


@dataclass
class Peers:
    fastapi_users: Path | None = None  # the peer's python
    oidc: type[OidcProvider] | None = None  # bench.peers.oidc_provider's, once the peer is installed
    unavailable: dict[str, str] = field(default_factory=dict)  # peer -> why it was not measured


@dataclass
class Result:
    backend: str
    comparisons: list[ab.Comparison]
    memory: dict[str, servers.Memory]  # server -> after the loads (one worker's for identity, the tree's for peers)


def tree_memory(root: int) -> servers.Memory:
    found = [m for m in (servers.memory(pid) for pid in servers.descendants(root)) if m is not None]
    return servers.Memory(sum(m.uss_mb for m in found), sum(m.pss_mb for m in found), sum(m.rss_mb for m in found))


def _worker_memory(server: servers.Server) -> servers.Memory:
    found = [m for m in (servers.memory(pid) for pid in server.workers()) if m is not None]
    return max(found, key=lambda m: m.uss_mb)


def _cycle_sign_in(emails: list[str], clients: int, call):
    def make(index: int) -> load.Step:
        mine = itertools.cycle(emails[index::clients])
        return lambda client: call(client, next(mine))

    return make


def _from_each(firsts: list[str], step: Callable[[str], load.Step]) -> Callable[[int], load.Step]:
    """Client i's step, made from `firsts[i]` (its own token); bound here, not to a loop's variable."""
    return lambda index: step(firsts[index])


def _alike(make: Callable[[], load.Step]) -> Callable[[int], load.Step]:
    """Every client's own step, each made by `make`."""
    return lambda _index: make()


def _oidc_provider(stack: ExitStack, peers: Peers, backend: str, url: str | None, workdir: Path, cpu: int | None,
                   say) -> OidcProvider | None:
    """oidc-provider started on database `url` (None: a SQLite file of its own), or None (said why) when the
    peer is missing or fails."""
    if peers.oidc is None:
        return None
    try:
        return stack.enter_context(peers.oidc(
            workdir / "oidc-provider", "sqlite" if backend == "SQLite" else "postgresql", url, free_port(), cpu))
    except Exception as error:  # the peer's own failure: said in the report, the rest goes on
        say(f"oidc-provider peer unavailable: {type(error).__name__}: {error}")
        peers.unavailable[OIDC_PROVIDER] = f"{type(error).__name__}: {error}"
        return None


def run(backend: str, urls: dict[str, str], oidc_url: str | None, workdir: Path, cpu: int | None, peers: Peers,
        settings: Settings, say=print) -> Result:
    """`urls`: the databases of identity, the floors and fastapi-users; `oidc_url` oidc-provider's (None:
    a SQLite file of its own); each server gets its own."""
    n = settings.clients
    with ExitStack() as stack:
        ports = {name: free_port() for name in ("sync", "keep", "floor")}
        env = identity.environment(urls["identity"], workdir, ports["sync"], worker="sync")
        migrate("services.identity", env)
        issued = floor.seed(urls["floor"], n, identity.PASSWORD)
        floor_codes = floor.CodeMinter(urls["floor"])
        stack.callback(floor_codes.close)
        ours = {SYNC: identity.server(env, ports["sync"], workdir / "identity-sync.log", cpu),
                KEEP: identity.server({**env, **identity.workers("gthread")}, ports["keep"],
                                      workdir / "identity-gthread.log", cpu)}
        floor_server = servers.Server(servers.gunicorn_argv("bench.floor:create_app()", ports["floor"]),
                                      {**env, "WEB_CONCURRENCY": "1", floor.URL_VARIABLE: urls["floor"]},
                                      ports["floor"], workdir / "floor.log", cpu)
        started = [*ours.values(), floor_server]
        if peers.fastapi_users is not None:
            started.append(fastapi_users.server(peers.fastapi_users, urls["fastapi-users"], workdir, cpu))
        for server in started:  # boot side by side, then wait for each
            server.quick_stop = True
            stack.callback(server.stop)
            server.start(boot_unpinned=True)
        provider = _oidc_provider(stack, peers, backend, oidc_url, workdir, cpu, say)
        for server in started:
            stack.enter_context(server)
        emails = identity.create_accounts(ports["sync"], urls["identity"], n * 4)
        pairs = {name: identity.sign_in_pairs(server.port, emails[:n]) for name, server in ours.items()}
        minter = identity.Minter(env, emails[0])
        rp = identity.basic(identity.RP, identity.RP_SECRET)
        tenancy = identity.basic("tenancy", DEVELOPMENT_SECRET)  # make run's development client
        cap = settings.codes

        sign_in = [ab.verify_side(cpu)]
        read, refresh, credentials, exchange = [], [], [], []
        for name, server in ours.items():
            port, pid, op = server.port, server.pid, OP_SYNC if name == SYNC else OP_KEEP
            sign_in.insert(-1, ab.http_side(name, "POST /v1/sessions", port, pid, _cycle_sign_in(
                emails, n, lambda client, email: identity.sign_in(client, email)[0]), n))
            me_tokens = [pair["access_token"] for pair in pairs[name]]
            read.append(ab.http_side(name, "GET /v1/me", port, pid, _from_each(me_tokens, lambda token: (
                lambda client: client.call("GET", "/v1/me", token=token)[0] == 200)), n))
            chains = [pair["refresh_token"] for pair in pairs[name]]
            refresh.append(ab.http_side(name, "POST /v1/tokens/refresh", port, pid, _from_each(chains, lambda token: (
                load.rotating("/v1/tokens/refresh", token))), n))
            op_chains = minter.refresh_tokens(n)
            refresh.append(ab.http_side(op, "POST /oauth2/token refresh_token", port, pid, _from_each(
                op_chains, lambda token: identity.refresh_grant_step("/oauth2/token", token, rp)), n))
            credentials.append(ab.http_side(name, "POST /v1/oauth/token client_credentials", port, pid, lambda _i: (
                identity.client_credentials_step("/v1/oauth/token", tenancy)), n))
            pool = identity.CodePool(minter.codes, cap)
            exchange.append(ab.http_side(name, "POST /oauth2/token authorization_code", port, pid, _alike(
                functools.partial(identity.exchange_step, pool, "/oauth2/token", rp, identity.REDIRECT_URI)), n,
                prepare=pool.refill))

        port, pid = floor_server.port, floor_server.pid
        floor_emails = [floor.email(number) for number in range(n)]
        sign_in.insert(-1, ab.http_side(SIGN_IN_FLOOR, "bench/floor.py POST /v1/sign-in", port, pid, _cycle_sign_in(
            floor_emails, n, lambda client, email: client.call(
                "POST", "/v1/sign-in", {"email": email, "password": identity.PASSWORD})[0] == 200), n))
        refresh.append(ab.http_side(REFRESH_FLOOR, "bench/floor.py POST /v1/rotate", port, pid,
                                    lambda i: load.rotating("/v1/rotate", issued[i]), n))
        service = identity.basic(floor.SERVICE, floor.SERVICE_SECRET)
        credentials.append(ab.http_side(CREDENTIALS_FLOOR, "bench/floor.py POST /v1/client-token", port, pid,
                                        lambda _i: identity.client_credentials_step("/v1/client-token", service), n))
        pool = identity.CodePool(floor_codes, cap)
        exchange.append(ab.http_side(EXCHANGE_FLOOR, "bench/floor.py POST /v1/exchange", port, pid, _alike(
            functools.partial(identity.exchange_step, pool, "/v1/exchange", identity.basic(floor.RP, floor.RP_SECRET),
                              floor.REDIRECT_URI)), n, prepare=pool.refill))
        say(f"  {backend}: servers up, accounts made, tokens minted")

        peer_servers: dict[str, int] = {}
        if peers.fastapi_users is not None:
            peer = started[-1]
            peer_servers[FASTAPI_USERS] = peer.pid
            client = load.Client(peer.port)
            try:
                for email in emails:
                    status, body = client.call("POST", "/auth/register",
                                               {"email": email, "password": identity.PASSWORD})
                    if status != 201:
                        raise RuntimeError(f"fastapi-users register answered {status}: {body}")
                form = {"password": identity.PASSWORD}
                tokens = [client.call("POST", "/auth/jwt/login", form={**form, "username": e})[1]["access_token"]
                          for e in emails[:n]]
            finally:
                client.close()
            sign_in.insert(-1, ab.http_side(FASTAPI_USERS, "POST /auth/jwt/login (form)", peer.port, peer.pid,
                                            _cycle_sign_in(emails, n, lambda client, email: client.call(
                                                "POST", "/auth/jwt/login", form={**form, "username": email})[0] == 200),
                                            n))
            read.append(ab.http_side(FASTAPI_USERS, "GET /users/me", peer.port, peer.pid, lambda i: (
                lambda client: client.call("GET", "/users/me", token=tokens[i])[0] == 200), n))

        if provider is not None:
            op_auth = identity.basic(provider.client_id, provider.client_secret)
            op_chains = provider.refresh_tokens(n)
            port, pid = provider.port, provider.pid
            peer_servers[OIDC_PROVIDER] = pid
            refresh.append(ab.http_side(OIDC_PROVIDER, "POST /token refresh_token", port, pid, lambda i: (
                identity.refresh_grant_step("/token", op_chains[i], op_auth)), n))
            credentials.append(ab.http_side(OIDC_PROVIDER, "POST /token client_credentials", port, pid, lambda _i: (
                identity.client_credentials_step("/token", op_auth)), n))
            pool = identity.CodePool(provider.authorization_codes, cap)
            exchange.append(ab.http_side(OIDC_PROVIDER, "POST /token authorization_code", port, pid, _alike(
                functools.partial(identity.exchange_step, pool, "/token", op_auth, provider.redirect_uri)), n,
                prepare=pool.refill))

        def ratios(numerators: list[str], denominator: str, target: float | None) -> list[Ratio]:
            return [Ratio(name, denominator, target) for name in numerators]

        specs = [
            ("sign-in", sign_in, settings.sign_in_seconds,
             ratios([SYNC, KEEP], FASTAPI_USERS, 1.0) + ratios([SYNC, KEEP], VERIFY, 0.9)
             + ratios([SYNC], SIGN_IN_FLOOR, 0.9) + ratios([SIGN_IN_FLOOR], VERIFY, None)
             + ratios([SIGN_IN_FLOOR], FASTAPI_USERS, None)),
            ("read", read, settings.seconds, ratios([SYNC, KEEP], FASTAPI_USERS, 1.0)),
            ("refresh with rotation", refresh, settings.seconds,
             ratios([SYNC, KEEP, OP_SYNC, OP_KEEP], OIDC_PROVIDER, 1.0) + ratios([SYNC], REFRESH_FLOOR, 0.9)
             + ratios([REFRESH_FLOOR], OIDC_PROVIDER, None)),
            ("client credentials", credentials, settings.seconds,
             ratios([SYNC, KEEP], OIDC_PROVIDER, 1.0) + ratios([SYNC], CREDENTIALS_FLOOR, 0.9)
             + ratios([CREDENTIALS_FLOOR], OIDC_PROVIDER, None)),
            ("OP code exchange", exchange, settings.seconds,
             ratios([SYNC, KEEP], OIDC_PROVIDER, 1.0) + ratios([SYNC], EXCHANGE_FLOOR, 0.9)
             + ratios([EXCHANGE_FLOOR], OIDC_PROVIDER, None)),
        ]
        comparisons = []
        for operation, sides, seconds, wanted in specs:
            names = {side.name for side in sides}
            comparison = ab.Comparison(operation, backend, sides,
                                       [r for r in wanted if r.numerator in names and r.denominator in names])
            say(f"  {backend}: {operation} ({len(sides)} sides x {settings.rounds} rounds of {seconds:g} s)...")
            ab.interleave(comparison, settings.rounds, seconds, settings.warmup, settings.warm_round)
            for ratio in comparison.ratios:
                rounds = " ".join(f"{value:.2f}" for value in comparison.per_round(ratio))
                say(f"    {ratio.numerator} / {ratio.denominator}: {comparison.median(ratio):.2f} ({rounds})")
            comparisons.append(comparison)

        say(f"  {backend}: done")
        memory = {name: _worker_memory(server) for name, server in ours.items()}
        memory.update({name: tree_memory(pid) for name, pid in peer_servers.items()})
        return Result(backend, comparisons, memory)

