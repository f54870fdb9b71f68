"""Reading configuration from the environment.

Each service turns env vars into one frozen settings object in its app factory; these helpers do
the parsing and raise `ConfigError` naming the variable, which entry points turn into a one-line
message and exit code 2.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

EXIT_BAD_CONFIG = 2
DEVELOPMENT_SECRET = "development-only-secret-do-not-use-in-production"


class ConfigError(Exception):
    """A configuration value is missing or wrong; `variable` names it."""

    def __init__(self, variable: str, message: str):
        super().__init__(f"{variable}: {message}")
        self.variable = variable


def text(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = env.get(name, "").strip()
    if value:
        return value
    if default is None:
        raise ConfigError(name, "is required")
    return default


def integer(env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be a whole number, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(name, f"must be {bound}, got {value}")
    return value


def choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = text(env, name, default)
    if value not in allowed:
        raise ConfigError(name, f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def url(env: Mapping[str, str], name: str, default: str | None, schemes: tuple[str, ...]) -> str:
    value = text(env, name, default)
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ConfigError(name, f"scheme must be one of {', '.join(schemes)}, got {value.split(':', 1)[0]!r}")
    if parts.scheme.startswith("http") and not parts.netloc:
        raise ConfigError(name, "needs a host")
    return value.rstrip("/") if parts.scheme.startswith("http") else value


#: The ports of the embedded default (`make run`); the URL defaults below follow them.
PORTS = {"identity": ("IDENTITY_PORT", 8001), "tenancy": ("TENANCY_PORT", 8002), "notifier": ("NOTIFIER_PORT", 8003),
         "web": ("WEB_PORT", 8000)}


def port(env: Mapping[str, str], service: str) -> int:
    name, default = PORTS[service]
    return integer(env, name, default, minimum=1, maximum=65535)


def local_url(env: Mapping[str, str], service: str) -> str:
    """Where the embedded default serves `service`: loopback on its port (IDENTITY_PORT and so on)."""
    return f"http://127.0.0.1:{port(env, service)}"


def identity_public_url(env: Mapping[str, str]) -> str:
    """IDENTITY_PUBLIC_URL: the base of mail links and the token issuer; by default identity on its port."""
    return url(env, "IDENTITY_PUBLIC_URL", local_url(env, "identity"), ("http", "https"))


def json_object(env: Mapping[str, str], name: str) -> dict:
    raw = env.get(name, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(name, f"is not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ConfigError(name, "must be a JSON object")
    return value


def var_dir(env: Mapping[str, str]) -> Path:
    """Where the embedded default keeps its files (SQLite databases, bus, mail)."""
    return Path(env.get("VAR_DIR", "").strip() or "var").resolve()


def database_url(env: Mapping[str, str], name: str, service: str) -> str:
    default = f"sqlite:///{var_dir(env) / (service + '.db')}"
    value = text(env, name, default)
    scheme = urlsplit(value).scheme
    if scheme not in ("sqlite", "postgresql", "postgresql+psycopg"):
        raise ConfigError(name, f"must be a sqlite:/// or postgresql+psycopg:// URL, got scheme {scheme!r}")
    if scheme == "postgresql":
        value = "postgresql+psycopg" + value[len("postgresql"):]
    return value


def broker_url(env: Mapping[str, str]) -> str:
    return url(env, "BROKER_URL", "filesystem://", ("filesystem", "memory", "amqp", "amqps", "pyamqp"))


def log_level(env: Mapping[str, str]) -> str:
    value = text(env, "LOG_LEVEL", "INFO").upper()
    if value not in logging.getLevelNamesMapping():
        raise ConfigError("LOG_LEVEL", f"must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {value!r}")
    return value


def secret(env: Mapping[str, str], name: str, production: bool) -> str:
    value = text(env, name, DEVELOPMENT_SECRET)
    if production and value == DEVELOPMENT_SECRET:
        raise ConfigError(name, "is the development secret; set a real one when APP_ENV=production")
    if production and len(value) < 32:
        raise ConfigError(name, "must be at least 32 characters when APP_ENV=production")
    return value


def app_env(env: Mapping[str, str]) -> str:
    return choice(env, "APP_ENV", "development", ("development", "production", "test"))


#: gunicorn worker classes `serve` may run (GUNICORN_WORKER_CLASS): `gthread` keeps connections alive and
#: serves GUNICORN_THREADS requests at once per worker; `sync` answers one request per connection.
WORKER_CLASSES = ("gthread", "sync")


@dataclass(frozen=True)
class ServerSettings:
    """How `serve` runs gunicorn (deploy/gunicorn.conf.py reads these, the same for every HTTP service)."""

    conf: str  # GUNICORN_CONF: the gunicorn config file
    workers: int  # WEB_CONCURRENCY
    worker_class: str  # GUNICORN_WORKER_CLASS: one of WORKER_CLASSES
    threads: int  # GUNICORN_THREADS: requests one gthread worker serves at once
    timeout: int  # GUNICORN_TIMEOUT
    graceful_timeout: int  # GUNICORN_GRACEFUL_TIMEOUT
    keepalive: int  # GUNICORN_KEEPALIVE: seconds an idle kept-alive connection stays open
    access_log: bool  # ACCESS_LOG=1 (default) logs one JSON line per request
    preload: bool  # GUNICORN_PRELOAD=1 (default) builds the app once, before the workers fork
    metrics_dir: str  # PROMETHEUS_MULTIPROC_DIR: where every worker's metrics are merged ("" for none)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServerSettings:
        return cls(
            conf=text(env, "GUNICORN_CONF", str(Path(__file__).resolve().parents[1] / "deploy" / "gunicorn.conf.py")),
            workers=integer(env, "WEB_CONCURRENCY", os.cpu_count() or 1, minimum=1, maximum=64),
            worker_class=choice(env, "GUNICORN_WORKER_CLASS", "gthread", WORKER_CLASSES),
            threads=integer(env, "GUNICORN_THREADS", 4, minimum=1, maximum=64),
            timeout=integer(env, "GUNICORN_TIMEOUT", 30, minimum=1),
            graceful_timeout=integer(env, "GUNICORN_GRACEFUL_TIMEOUT", 20, minimum=0),
            keepalive=integer(env, "GUNICORN_KEEPALIVE", 5, minimum=0, maximum=300),
            access_log=choice(env, "ACCESS_LOG", "1", ("0", "1")) == "1",
            preload=choice(env, "GUNICORN_PRELOAD", "1", ("0", "1")) == "1",
            metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR", "").strip(),
        )


@dataclass(frozen=True)
class ServiceSettings:
    """The settings every service has; each service's `Settings` adds its own fields to these."""

    app_env: str
    database_url: str
    broker_url: str
    bus_queue_type: str  # quorum to match queues pre-declared as quorum queues (deploy/rabbitmq)
    var_dir: Path
    bind_host: str
    port: int
    log_level: str
    log_format: str
    server: ServerSettings  # how `serve` runs gunicorn

    @property
    def production(self) -> bool:
        return self.app_env == "production"

    @staticmethod
    def common(env: Mapping[str, str], service: str) -> dict:
        """The shared fields of `service` (its <SERVICE>_DATABASE_URL, and its port from PORTS), as keyword
        arguments."""
        environment = app_env(env)
        prefix = service.upper()
        return {
            "app_env": environment,
            "database_url": database_url(env, f"{prefix}_DATABASE_URL", service),
            "broker_url": broker_url(env),
            "bus_queue_type": choice(env, "BUS_QUEUE_TYPE", "classic", ("classic", "quorum")),
            "var_dir": var_dir(env),
            "bind_host": text(env, "BIND_HOST", "127.0.0.1"),
            "port": port(env, service),
            "log_level": log_level(env),
            "log_format": choice(env, "LOG_FORMAT", "json" if environment == "production" else "text",
                                 ("json", "text")),
            "server": ServerSettings.from_env(env),
        }


def load_or_exit(loader, env: Mapping[str, str] | None = None):
    """Call `loader(env)`; on ConfigError print one line and exit 2 (for entry points)."""
    try:
        return loader(os.environ if env is None else env)
    except ConfigError as exc:
        print(f"threshold: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_CONFIG) from None
