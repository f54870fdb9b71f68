"""Loopback ports: a free one to listen on, and whether something (an HTTP server) answers on one."""
from __future__ import annotations

import http.client
import socket

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nobody listens on right now (another process may still take it before the caller does)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = HOST, timeout: float = 1.0) -> bool:
    """Whether something accepts a TCP connection on `host:port`."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def answers(port: int, path: str = "/readyz", timeout: float = 2.0) -> bool:
    """Whether the HTTP server on loopback `port` answers GET `path` with 200: False while nothing listens
    there yet, while it is still booting, or when it answers anything else."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
