"""panva's openid-client (npm) as a relying party, run by node: `install()` puts the package and
openid_client/rp.mjs under var/node/openid-client (never committed; npm installs from the registry
the first time, then it is cached), `run()` runs one step of rp.mjs and returns what it printed."""
from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path

from support import ROOT
from tests import backends

SOURCE = Path(__file__).parent / "openid_client"
WORKDIR = ROOT / "var" / "node" / "openid-client"


def install() -> Path:
    """The directory rp.mjs runs in. Without node and npm: a skip, or a failure with CI=true."""
    backends.require(shutil.which("node") is not None and shutil.which("npm") is not None, "node and npm")
    WORKDIR.mkdir(parents=True, exist_ok=True)
    with open(WORKDIR / ".lock", "w") as lock:  # pytest-xdist workers share the directory
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in ("package.json", "rp.mjs"):
            shutil.copyfile(SOURCE / name, WORKDIR / name)
        if not (WORKDIR / "node_modules" / "openid-client").is_dir():
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=WORKDIR,
                           check=True, capture_output=True, timeout=300)
    return WORKDIR


def run(workdir: Path, step: str, **arguments) -> dict:
    """rp.mjs's answer to `step`; asserts node exited 0 (its stderr is the message when not)."""
    result = _node(workdir, step, arguments)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def refused(workdir: Path, step: str, **arguments) -> str:
    """What node wrote to stderr when openid-client refused `step`; asserts it did."""
    result = _node(workdir, step, arguments)
    assert result.returncode != 0, result.stdout
    return result.stderr


def _node(workdir: Path, step: str, arguments: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["node", "rp.mjs", step, json.dumps(arguments)], cwd=workdir, capture_output=True,
                          text=True, timeout=60, check=False)
