"""The workspace switcher and the page behind it, against the bare endpoint: tenancy's GET /v1/workspaces
and web's workspace home (`/w/<id>`, a signed-in browser session), each per server CPU-second beside
bench.bare_app's GET /v1/ping in the same round; and the floor under that page (bench/page_floor.py: the
least a page of a backend-for-frontend over tenancy's API does on this stack), informational.

Every server runs under real gunicorn with one worker: bare, tenancy and web on the server core, identity
(which web and tenancy call, over HTTP) on the load driver's cores. Only one server is under load at a
time, and only its worker's CPU counts. A round is bare, tenancy, web, page floor, one window each; each round's
ratios come from its own windows, so the machine's drift falls on both sides of a ratio.

`python -m bench.tenancy` prints the table; `run(...)` returns it for `make bench`.
"""
from __future__ import annotations

import html
import os
import re
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import identity, load, page_floor, servers
from support.databases import migrate
from support.ports import free_port

ORGANIZATIONS = 3  # the switcher lists a workspace of each
PAGE_MARKER = b"<html"


def _environment(var_dir: Path, ports: dict[str, int]) -> dict[str, str]:
    return dict(
        os.environ,
        APP_ENV="development",
        VAR_DIR=str(var_dir),
        IDENTITY_PORT=str(ports["identity"]),
        TENANCY_PORT=str(ports["tenancy"]),
        WEB_PORT=str(ports["web"]),
        IDENTITY_PUBLIC_URL=f"http://127.0.0.1:{ports['identity']}",
        TENANCY_INTERNAL_URL=f"http://127.0.0.1:{ports['tenancy']}",
        WEB_PUBLIC_URL=f"http://127.0.0.1:{ports['web']}",
        WEB_CONCURRENCY="1",
        IP_RATE_LIMIT_PER_MINUTE="100000000",  # one client address sends everything here
        PYTHONUNBUFFERED="1",
    )


def _request(port: int, method: str, path: str, body: bytes | None = None,
             headers: dict | None = None) -> tuple[int, dict, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _cookie(headers: dict, current: str | None) -> str | None:
    found = re.match(r"threshold_session=([^;]*)", headers.get("set-cookie", ""))
    return found.group(1) if found else current


def browser_sign_in(port: int, email: str, password: str) -> str:
    """Sign in through web's form, as a browser does; returns the session cookie's value."""
    status, headers, page = _request(port, "GET", "/sign-in")
    cookie = _cookie(headers, None)
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page)
    if status != 200 or cookie is None or token is None:
        raise RuntimeError(f"sign-in page answered {status}")
    from urllib.parse import urlencode

    form = urlencode({"csrf_token": html.unescape(token.group(1).decode()), "email": email, "password": password})
    status, headers, _ = _request(port, "POST", "/sign-in", form.encode(), {
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"threshold_session={cookie}"})
    cookie = _cookie(headers, cookie)
    if status != 302 or cookie is None:
        raise RuntimeError(f"sign-in answered {status}")
    return cookie


def _workspaces(client: load.Client, token: str) -> list[dict]:
    status, body = client.call("GET", "/v1/workspaces", token=token)
    if status != 200:
        raise RuntimeError(f"GET /v1/workspaces answered {status}: {body}")
    return body["items"]


def _page_step(path: str, cookie: str):
    """A step that GETs a page with the session cookie (`name=value`) and checks it is the page (200, HTML)."""
    headers = {"Cookie": cookie}

    def step(client: load.Client) -> bool:
        try:
            client.conn.request("GET", path, headers=headers)
            response = client.conn.getresponse()
            body = response.read()
        except Exception:
            client.conn.close()
            raise
        return response.status == 200 and PAGE_MARKER in body[:200]

    return step


def _window(server: servers.Server, make_step, clients: int, seconds: float, warmup: float) -> dict:
    """One window of load on `server`: requests per second of its whole process tree's CPU (as the peer
comparisons count it), and what went into it."""
    result = load.run(server.port, make_step, clients, seconds, warmup,
                      probe=lambda: servers.tree_cpu_seconds(server.pid))
    before, after = result.probes
    cpu = after - before
    return {"requests": result.requests, "errors": result.errors, "cpu_seconds": round(cpu, 3),
            "per_cpu_second": round(result.requests / cpu, 1) if cpu else 0.0,
            "p50_ms": round(result.percentile(0.5) * 1000, 2), "first_error": result.first_error}


def run(var_dir: Path, cpu: int | None, clients: int, seconds: float, warmup: float, rounds: int) -> dict:
    """`rounds` rounds of bare GET, tenancy GET /v1/workspaces, web's workspace home and the page floor's, one
    window of `seconds` (after `warmup`) each, on a server with one gunicorn worker pinned to `cpu`.

    Returns {"rounds": [{"bare": w, "tenancy": w, "web": w, "floor": w, "tenancy_ratio": r, "web_ratio": r,
    "floor_ratio": r}, ...], "tenancy_ratio": median, "web_ratio": median, "floor_ratio": median}, where
    each window w is {"requests", "errors", "cpu_seconds", "per_cpu_second", "p50_ms", "first_error"} and
    a ratio is per_cpu_second over the bare endpoint's in the same round."""
    var_dir.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ("bare", "identity", "tenancy", "web", "floor")}
    env = _environment(var_dir, ports)
    for module in ("services.identity", "services.tenancy", "services.web"):
        migrate(module, env)
    others = sorted(os.sched_getaffinity(0) - {cpu}) if cpu is not None else []
    helper_cpu = others[0] if len(others) == 1 else None

    with ExitStack() as stack:
        def serve(name: str, argv: list[str], pin: int | None) -> servers.Server:
            return stack.enter_context(servers.Server(argv, env, ports[name], var_dir / f"{name}.log", pin))

        serve("identity", [sys.executable, "-m", "services.identity", "serve"], helper_cpu)
        bare = serve("bare", servers.gunicorn_argv("bench.bare_app:create_app()", ports["bare"]), cpu)
        tenancy = serve("tenancy", [sys.executable, "-m", "services.tenancy", "serve"], cpu)
        web = serve("web", [sys.executable, "-m", "services.web", "serve"], cpu)

        [email] = identity.create_accounts(ports["identity"], f"sqlite:///{var_dir / 'identity.db'}", 1)
        client = load.Client(ports["identity"])
        try:
            ok, pair = identity.sign_in(client, email)
        finally:
            client.close()
        if not ok:
            raise RuntimeError(f"sign-in failed: {pair}")
        token = pair["access_token"]
        client = load.Client(ports["tenancy"])
        try:
            for number in range(ORGANIZATIONS):
                status, body = client.call("POST", "/v1/organizations", {"name": f"Bench {number}"}, token=token)
                if status != 201:
                    raise RuntimeError(f"POST /v1/organizations answered {status}: {body}")
            listed = _workspaces(client, token)
        finally:
            client.close()
        cookie = browser_sign_in(ports["web"], email, identity.PASSWORD)
        home = f"/w/{listed[0]['id']}"
        if not _page_step(home, f"threshold_session={cookie}")(load.Client(ports["web"])):
            raise RuntimeError(f"GET {home} is not the workspace page")
        floor_url = f"sqlite:///{var_dir / 'page-floor.db'}"
        floor_cookie = f"{page_floor.COOKIE}={page_floor.seed(floor_url, token)}"
        env.update({page_floor.DATABASE_VARIABLE: floor_url,
                    page_floor.TENANCY_VARIABLE: f"http://127.0.0.1:{ports['tenancy']}"})
        floor = serve("floor", servers.gunicorn_argv("bench.page_floor:create_app()", ports["floor"]), cpu)
        if not _page_step(home, floor_cookie)(load.Client(ports["floor"])):
            raise RuntimeError(f"the page floor's GET {home} is not the workspace page")

        def bare_step(_index):
            return lambda c: c.call("GET", "/v1/ping")[0] == 200

        def tenancy_step(_index):
            return lambda c: c.call("GET", "/v1/workspaces", token=token)[0] == 200

        def web_step(_index):
            return _page_step(home, f"threshold_session={cookie}")

        def floor_step(_index):
            return _page_step(home, floor_cookie)

        figures = []
        for _ in range(rounds):
            row: dict[str, Any] = {"bare": _window(bare, bare_step, clients, seconds, warmup),
                                   "tenancy": _window(tenancy, tenancy_step, clients, seconds, warmup),
                                   "web": _window(web, web_step, clients, seconds, warmup),
                                   "floor": _window(floor, floor_step, clients, seconds, warmup)}
            base = row["bare"]["per_cpu_second"]
            for name in ("tenancy", "web", "floor"):
                row[f"{name}_ratio"] = round(row[name]["per_cpu_second"] / base, 3) if base else 0.0
            figures.append(row)
        return {"rounds": figures, "workspaces": len(listed),
                **{f"{name}_ratio": statistics.median(row[f"{name}_ratio"] for row in figures)
                   for name in ("tenancy", "web", "floor")}}


def table(figures: dict) -> str:
    lines = [f"{'round':<6} {'bare/s':>9} {'tenancy/s':>10} {'web/s':>9} {'floor/s':>9} {'tenancy/bare':>13} "
             f"{'web/bare':>9} {'floor/bare':>11}   (requests per worker CPU-second; floor: bench/page_floor.py)"]
    for number, row in enumerate(figures["rounds"], 1):
        errors = sum(row[name]["errors"] for name in ("bare", "tenancy", "web", "floor"))
        lines.append(f"{number:<6} {row['bare']['per_cpu_second']:>9.0f} {row['tenancy']['per_cpu_second']:>10.0f} "
                     f"{row['web']['per_cpu_second']:>9.0f} {row['floor']['per_cpu_second']:>9.0f} "
                     f"{row['tenancy_ratio']:>13.2f} {row['web_ratio']:>9.2f} {row['floor_ratio']:>11.2f}"
                     + (f"   {errors} errors" if errors else ""))
    lines.append(f"{'median':<6} {'':>9} {'':>10} {'':>9} {'':>9} {figures['tenancy_ratio']:>13.2f} "
                 f"{figures['web_ratio']:>9.2f} {figures['floor_ratio']:>11.2f}")
    return "\n".join(lines)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.tenancy")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[-1] if len(cpus) > 1 else None
    if cpu is not None:
        os.sched_setaffinity(0, set(cpus[:-1]))  # the load driver off the server core
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="threshold-bench-tenancy-") as folder:
        figures = run(Path(folder), cpu, args.clients, args.seconds, args.warmup, args.rounds)
    print(table(figures))
    print(f"({figures['workspaces']} workspaces in the switcher; {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
