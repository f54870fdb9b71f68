"""deploy/nginx/nginx.conf run by Debian's nginx from tests: in a prefix of the test's own, its ports
moved to free loopback ones, in front of live services."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import requests

from support import ROOT
from support.processes import spawn, stop_group
from tests import backends
from tests.processes import wait_for

NGINX_DIR = ROOT / "deploy" / "nginx"
SERVICES = {"identity": 8001, "tenancy": 8002, "notifier": 8003}  # as the checked-in file proxies them


def binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    backends.require(found, "nginx", "is not installed (.ci/run apt-installs Debian's nginx-light)")
    assert found is not None
    return found


def command(prefix: Path, conf: Path, directives: str = "") -> list[str]:
    """A prefix of the test's own (temp files, pid) and logs on stderr: nothing outside `prefix`."""
    user = " user root;" if os.geteuid() == 0 else ""  # workers write to the test's 0700 temp directory
    return [binary(), "-p", f"{prefix}/", "-c", str(conf), "-g", f"pid {prefix}/nginx.pid;{user}{directives}"]


class Nginx:
    """The checked-in config with each service's `listen` on `ports[service]` and its upstream at
    `upstreams[service]` ("127.0.0.1:port"); only the ports and upstream addresses are rewritten."""

    def __init__(self, workdir: Path, ports: dict[str, int], upstreams: dict[str, str]):
        self.workdir = workdir
        self.ports = ports
        self.upstreams = upstreams
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Nginx:
        text = (NGINX_DIR / "nginx.conf").read_text()
        for service, port in SERVICES.items():
            for old, new in ((f"listen {port};", f"listen 127.0.0.1:{self.ports[service]};"),
                             (f"{service}:{port}", self.upstreams[service])):
                assert text.count(old) == 1, old
                text = text.replace(old, new)
        conf_dir = self.workdir / "nginx-conf"
        conf_dir.mkdir()
        (conf_dir / "nginx.conf").write_text(text)
        shutil.copy(NGINX_DIR / "problems.conf", conf_dir)
        self.process = spawn(command(self.workdir, conf_dir / "nginx.conf", " daemon off;"), os.environ,
                             self.workdir / "nginx.log")
        try:
            wait_for(self._listening, timeout=30, what="nginx to listen")
        except BaseException:
            self.__exit__()
            raise
        return self

    def _listening(self) -> bool:
        assert self.process.poll() is None, (self.workdir / "nginx.log").read_text(errors="replace")
        try:
            requests.get(f"http://127.0.0.1:{self.ports['identity']}/", timeout=2)  # any answer: even a 502
            return True
        except requests.RequestException:
            return False

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            stop_group(self.process, timeout=20)
