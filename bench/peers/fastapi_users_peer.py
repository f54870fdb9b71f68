"""fastapi-users installed into var/bench-peers/fastapi-users (pinned by bench/peers/fastapi_users.txt) and
served by uvicorn, one worker process, pinned to the servers' core."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from bench import servers
from support.ports import free_port

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "fastapi_users.txt"


class PeerUnavailable(RuntimeError):
    """The peer cannot run here (the registry did not answer, a build failed): the reason."""


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    if result.returncode != 0:
        lines = [line for line in result.stdout.splitlines() if line.strip() and not line.startswith("WARNING")]
        raise PeerUnavailable(f"{what} failed: {lines[-1] if lines else result.returncode}")


def install(var_dir: Path) -> Path:
    """The peer's python, installing it first unless the same pins are already installed (idempotent)."""
    home = var_dir / "bench-peers" / "fastapi-users"
    python = home / "bin" / "python"
    stamp = home / ".requirements-sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", "--clear", str(home)], "python -m venv")
    _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
         "pip install -r bench/peers/fastapi_users.txt")
    stamp.write_text(wanted)
    return python


def async_url(database_url: str) -> str:
    """identity's SQLAlchemy URL as the peer's async driver spells it."""
    if database_url.startswith("sqlite"):
        return "sqlite+aiosqlite://" + database_url.split("://", 1)[1]
    return "postgresql+asyncpg://" + database_url.split("://", 1)[1]


def server(python: Path, database_url: str, workdir: Path, cpu: int | None) -> servers.Server:
    """uvicorn (one process, keep-alive on by default, access log on like gunicorn's) on a free port."""
    port = free_port()
    argv = [str(python), "-m", "uvicorn", "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "fastapi_users_app:app"]
    env = {"PATH": "/usr/bin:/bin", "FASTAPI_USERS_DATABASE_URL": async_url(database_url),
           "PYTHONUNBUFFERED": "1"}
    return servers.Server(argv, env, port, workdir / "fastapi-users.log", cpu, forks=False)
