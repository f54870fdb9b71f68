"""panva's oidc-provider (npm) as a benchmark peer of Threshold's token endpoint.

`install(var_dir)` puts the pinned packages of oidc_provider/package-lock.json (oidc-provider, pg, and
better-sqlite3 built from source: its prebuilt binary cannot be downloaded here) and the server
script under var_dir/bench-peers/oidc-provider with `npm ci`, once per lock file. `OidcProvider` runs
oidc_provider/server.mjs there on SQLite or PostgreSQL, pinned to one CPU, in its own process group:

    with OidcProvider(workdir, "sqlite", None, port=0, cpu=1) as peer:
        tokens = peer.refresh_tokens(1000)      # minted through oidc-provider's own models
        post(f"http://127.0.0.1:{peer.port}{peer.token_path}", auth=(peer.client_id, peer.client_secret), ...)

What it issues is set to match Threshold (docs/oidc-provider.md): ES256 ID tokens, access tokens as
ES256 JWTs (`at+jwt`) for one audience, refresh tokens rotated on every use (a reused one is
`invalid_grant` and ends its grant), codes once with PKCE S256, client_credentials for its one
confidential client (client_secret_basic).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from support import ROOT
from support.processes import spawn, stop_group

SOURCE = Path(__file__).parent / "oidc_provider"
VAR_DIR = ROOT / "var"
FILES = ("package.json", "package-lock.json", "server.mjs", "adapters/sqlite.mjs", "adapters/postgresql.mjs")
NODE_HEADERS = Path("/usr/include/node/node.h")  # Debian's nodejs-dev: node-gyp builds against these
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


class PeerUnavailable(Exception):
    """The peer cannot run here; str() says why."""


def install_dir(var_dir: Path = VAR_DIR) -> Path:
    return var_dir / "bench-peers" / "oidc-provider"


def install(var_dir: Path = VAR_DIR) -> None:
    """`npm ci` from the committed lock into var_dir/bench-peers/oidc-provider, unless that lock is installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise PeerUnavailable("node and npm are needed for oidc-provider and are not on PATH")
    target = install_dir(var_dir)
    (target / "adapters").mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:  # pytest-xdist workers and bench runs may share the directory
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in FILES:  # the scripts are copied every time: node resolves node_modules beside them
            shutil.copyfile(SOURCE / name, target / name)
        stamp = hashlib.sha256((SOURCE / "package.json").read_bytes()
                               + (SOURCE / "package-lock.json").read_bytes()).hexdigest()
        installed = target / ".installed"
        if installed.exists() and installed.read_text() == stamp and (target / "node_modules").is_dir():
            return
        installed.unlink(missing_ok=True)
        command = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
        if NODE_HEADERS.exists():
            command.append(f"--nodedir={NODE_HEADERS.parents[2]}")
        env = dict(os.environ, npm_config_build_from_source="true")  # prebuild-install would try GitHub
        try:
            result = subprocess.run(command, cwd=target, env=env, capture_output=True, text=True, timeout=900,
                                    check=False)
        except subprocess.TimeoutExpired:
            raise PeerUnavailable("npm ci for oidc-provider took more than 15 minutes") from None
        if result.returncode != 0:
            raise PeerUnavailable(f"npm ci for oidc-provider failed ({result.returncode}): {result.stderr[-2000:]}")
        check = subprocess.run([node, "-e", "new (require('better-sqlite3'))(':memory:').close()"], cwd=target,
                               capture_output=True, text=True, timeout=60, check=False)
        if check.returncode != 0:
            raise PeerUnavailable(f"better-sqlite3 does not load after npm ci: {check.stderr[-2000:]}")
        installed.write_text(stamp)


def node_url(database_url: str) -> str:
    """A SQLAlchemy URL (postgresql+psycopg://) as node's pg wants it (postgresql://)."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", database_url)


class OidcProvider:
    """oidc-provider serving 127.0.0.1:`port` (0: a free one; `port` holds the real one once entered)."""

    token_path = "/token"

    def __init__(self, workdir: Path, backend: str, database_url: str | None = None, port: int = 0,
                 cpu: int | None = None, var_dir: Path = VAR_DIR):
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"backend must be sqlite or postgresql, not {backend!r}")
        if backend == "postgresql" and not database_url:
            raise ValueError("the postgresql backend needs a database_url")
        self.workdir = Path(workdir)
        self.backend = backend
        self.database = str(self.workdir / "oidc-provider.db") if backend == "sqlite" else node_url(database_url or "")
        self.port = port
        self.cpu = cpu
        self.var_dir = Path(var_dir)
        self.client_id = "bench-client"
        self.client_secret = secrets.token_urlsafe(24)
        self.redirect_uri = "https://rp.bench.test/callback"
        self.log_path = self.workdir / "oidc-provider.log"
        self.pid = 0
        self._process: subprocess.Popen | None = None
        self._admin_port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> OidcProvider:
        install(self.var_dir)
        node = shutil.which("node")
        assert node is not None  # install() checked
        self.workdir.mkdir(parents=True, exist_ok=True)
        ready = self.workdir / "oidc-provider.ready"
        ready.unlink(missing_ok=True)
        env = dict(os.environ, PORT=str(self.port), BACKEND=self.backend, DATABASE=self.database,
                   CLIENT_ID=self.client_id, CLIENT_SECRET=self.client_secret, REDIRECT_URI=self.redirect_uri,
                   READY_FILE=str(ready))
        cpu = self.cpu

        def in_child() -> None:
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})

        self._process = spawn([node, "server.mjs"], env, self.log_path, cwd=install_dir(self.var_dir),
                              preexec_fn=in_child)
        self.pid = self._process.pid
        try:
            self._wait_ready(ready)
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop()

    def refresh_tokens(self, n: int) -> list[str]:
        """n refresh tokens (scope openid offline_access), each of its own grant and account."""
        return list(self._admin("/refresh-tokens", n)["refresh_tokens"])

    def authorization_codes(self, n: int) -> list[tuple[str, str]]:
        """n (code, code_verifier) pairs: codes for redirect_uri, PKCE S256, each of its own grant."""
        return [(code, verifier) for code, verifier in self._admin("/authorization-codes", n)["codes"]]

    def _admin(self, path: str, n: int) -> dict:
        request = urllib.request.Request(f"http://127.0.0.1:{self._admin_port}{path}", method="POST",
                                         data=json.dumps({"n": n}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())

    def _wait_ready(self, ready: Path) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.exists():
            if self._process.poll() is not None:
                raise PeerUnavailable(f"oidc-provider exited with {self._process.returncode}: {self._log_tail()}")
            if time.monotonic() > deadline:
                raise PeerUnavailable(f"oidc-provider did not start in {START_TIMEOUT:.0f} s: {self._log_tail()}")
            time.sleep(0.05)
        started = json.loads(ready.read_text())
        self.port = int(started["issuer"].rsplit(":", 1)[1])
        self._admin_port = int(started["admin_port"])

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_group(process, timeout=STOP_TIMEOUT)
