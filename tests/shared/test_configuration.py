"""Configuration is validated at start: a wrong value gives one line naming the variable and exit code 2.

Each entry point runs as a real process with a clean environment, a temporary VAR_DIR and a short
timeout. Should validation ever be missing, the process would start serving instead of exiting 2;
it is then stopped (SIGTERM to its process group, which `services.run` also passes on to its
children) and the test fails.
"""
from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shared import config
from support import ROOT
from support.ports import free_port

TIMEOUT = 30
GOOD_SECRET = "a-real-production-secret-of-at-least-32-characters"

IDENTITY_SERVE = ("services.identity", "serve")
TENANCY_SERVE = ("services.tenancy", "serve")
NOTIFIER_CONSUME = ("services.notifier", "consume")
NOTIFIER_SERVE = ("services.notifier", "serve")
RUN_ALL = ("services.run",)
IDENTITY_MIGRATE = ("services.identity", "migrate")


def run_entry_point(command: tuple[str, ...], tmp_path: Path, **env_vars: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "VAR_DIR": str(tmp_path / "var"),
        "IDENTITY_PORT": str(free_port()),
        "TENANCY_PORT": str(free_port()),
        "NOTIFIER_PORT": str(free_port()),
        "WEB_CONCURRENCY": "1",
    }
    env.update(env_vars)
    process = subprocess.Popen([sys.executable, "-m", *command], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
        pytest.fail(f"{' '.join(command)} kept running with a bad configuration:\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def assert_config_error(result: subprocess.CompletedProcess, variable: str) -> str:
    assert result.returncode == config.EXIT_BAD_CONFIG, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("threshold: configuration error: "), lines[0]
    assert f"{variable}:" in lines[0], lines[0]
    assert result.stdout.strip() == ""
    return lines[0]


BAD_VALUES = {
    "IDENTITY_DATABASE_URL": "mysql://x",
    "TENANCY_DATABASE_URL": "mysql://x",
    "NOTIFIER_DATABASE_URL": "mysql://x",
    "BROKER_URL": "http://x",
    "SMTP_URL": "ftp://x",
    "PASSWORD_MIN_LENGTH": "abc",
    "ACCESS_TOKEN_TTL": "5",
    "IDENTITY_PUBLIC_URL": "ftp://x",
    "IDENTITY_PORT": "99999",
    "TENANCY_PORT": "99999",
    "NOTIFIER_PORT": "0",
    "NOTIFIER_PREFETCH": "many",
    "MAIL_FROM": "not an address",
    "APP_ENV": "staging",
    "LOG_LEVEL": "verbose",
    "LOG_FORMAT": "xml",
    "BUS_QUEUE_TYPE": "stream",
    "GUNICORN_WORKER_CLASS": "eventlet",
    "GUNICORN_THREADS": "0",
    "WEB_CONCURRENCY": "none",
    "ACCESS_LOG": "yes",
}

CASES = [
    (IDENTITY_SERVE, "IDENTITY_DATABASE_URL"),
    (IDENTITY_SERVE, "BROKER_URL"),
    (IDENTITY_SERVE, "PASSWORD_MIN_LENGTH"),
    (IDENTITY_SERVE, "ACCESS_TOKEN_TTL"),
    (IDENTITY_SERVE, "IDENTITY_PUBLIC_URL"),
    (IDENTITY_SERVE, "IDENTITY_PORT"),
    (IDENTITY_SERVE, "APP_ENV"),
    (TENANCY_SERVE, "TENANCY_DATABASE_URL"),
    (TENANCY_SERVE, "BROKER_URL"),
    (TENANCY_SERVE, "IDENTITY_PUBLIC_URL"),
    (TENANCY_SERVE, "TENANCY_PORT"),
    (TENANCY_SERVE, "APP_ENV"),
    (NOTIFIER_CONSUME, "NOTIFIER_DATABASE_URL"),
    (NOTIFIER_CONSUME, "BROKER_URL"),
    (NOTIFIER_CONSUME, "SMTP_URL"),
    (NOTIFIER_CONSUME, "NOTIFIER_PREFETCH"),
    (NOTIFIER_CONSUME, "MAIL_FROM"),
    (NOTIFIER_CONSUME, "APP_ENV"),
    (NOTIFIER_SERVE, "NOTIFIER_PORT"),
    (RUN_ALL, "IDENTITY_DATABASE_URL"),
    (RUN_ALL, "TENANCY_DATABASE_URL"),
    (RUN_ALL, "NOTIFIER_DATABASE_URL"),
    (RUN_ALL, "BROKER_URL"),
    (RUN_ALL, "SMTP_URL"),
    (RUN_ALL, "PASSWORD_MIN_LENGTH"),
    (RUN_ALL, "IDENTITY_PORT"),
    (RUN_ALL, "TENANCY_PORT"),
    (RUN_ALL, "NOTIFIER_PORT"),
    (RUN_ALL, "APP_ENV"),
    # Read with the settings, before logging is set up: a bad one is one line, not a traceback.
    (IDENTITY_MIGRATE, "LOG_LEVEL"),
    (IDENTITY_MIGRATE, "LOG_FORMAT"),
    (IDENTITY_MIGRATE, "BUS_QUEUE_TYPE"),
    (IDENTITY_MIGRATE, "IDENTITY_PORT"),  # every command checks all its settings, not only serve
    (TENANCY_SERVE, "LOG_LEVEL"),
    (NOTIFIER_CONSUME, "LOG_FORMAT"),
    (NOTIFIER_CONSUME, "BUS_QUEUE_TYPE"),
    (RUN_ALL, "LOG_LEVEL"),
    # How serve runs gunicorn: read with every service's settings too.
    (IDENTITY_SERVE, "GUNICORN_WORKER_CLASS"),
    (TENANCY_SERVE, "GUNICORN_THREADS"),
    (NOTIFIER_SERVE, "WEB_CONCURRENCY"),
    (IDENTITY_MIGRATE, "ACCESS_LOG"),
]


@pytest.mark.parametrize(("command", "variable"), CASES, ids=[f"{' '.join(c)}:{v}" for c, v in CASES])
@pytest.mark.live  # runs the entry point as a process
def test_a_bad_value_exits_2_with_one_line_naming_the_variable(tmp_path, command, variable):
    result = run_entry_point(command, tmp_path, **{variable: BAD_VALUES[variable]})

    assert_config_error(result, variable)


@pytest.mark.parametrize("command", [IDENTITY_SERVE, RUN_ALL, ("services.identity", "migrate"),
                                     ("services.identity", "rotate-key")], ids=" ".join)
@pytest.mark.live  # runs the entry point as a process
def test_production_with_the_development_secret_key_exits_2(tmp_path, command):
    result = run_entry_point(command, tmp_path, APP_ENV="production")

    line = assert_config_error(result, "SECRET_KEY")
    assert config.DEVELOPMENT_SECRET not in line


@pytest.mark.parametrize("secret", [config.DEVELOPMENT_SECRET, "short-secret", "   "],
                         ids=["explicit development secret", "too short", "blank"])
@pytest.mark.live  # runs the entry point as a process
def test_production_refuses_a_weak_secret_key(tmp_path, secret):
    assert_config_error(run_entry_point(IDENTITY_SERVE, tmp_path, APP_ENV="production", SECRET_KEY=secret),
                        "SECRET_KEY")


@pytest.mark.live  # runs the entry point as a process
def test_production_refuses_the_development_totp_key(tmp_path):
    result = run_entry_point(IDENTITY_SERVE, tmp_path, APP_ENV="production", SECRET_KEY=GOOD_SECRET)

    assert_config_error(result, "TOTP_ENCRYPTION_KEYS")


@pytest.mark.live  # runs the entry point as a process
def test_production_tenancy_refuses_the_development_client_secret(tmp_path):
    assert_config_error(run_entry_point(TENANCY_SERVE, tmp_path, APP_ENV="production"), "TENANCY_CLIENT_SECRET")


@pytest.mark.live  # runs the entry point as a process
def test_run_checks_everything_before_it_migrates_or_starts_anything(tmp_path):
    result = run_entry_point(RUN_ALL, tmp_path, SMTP_URL="ftp://x")

    assert_config_error(result, "SMTP_URL")
    var_dir = tmp_path / "var"
    assert not var_dir.exists() or not any(var_dir.rglob("*.db")), list(var_dir.rglob("*"))


@pytest.mark.live  # runs the entry point as a process
def test_the_message_says_what_is_wrong(tmp_path):
    line = assert_config_error(run_entry_point(IDENTITY_SERVE, tmp_path, PASSWORD_MIN_LENGTH="abc"),
                               "PASSWORD_MIN_LENGTH")
    assert "whole number" in line and "'abc'" in line

    line = assert_config_error(run_entry_point(IDENTITY_SERVE, tmp_path, IDENTITY_PORT="99999"), "IDENTITY_PORT")
    assert "between 1 and 65535" in line


# --- the helpers in shared/config.py ----------------------------------------------------------------

def test_integer_parses_defaults_and_bounds():
    assert config.integer({}, "N", 7) == 7
    assert config.integer({"N": "  "}, "N", 7) == 7
    assert config.integer({"N": " 42 "}, "N", 7) == 42
    assert config.integer({"N": "65535"}, "N", 1, minimum=1, maximum=65535) == 65535
    for raw in ("abc", "1.5", "1e3", "0x10", "4 2"):
        with pytest.raises(config.ConfigError) as error:
            config.integer({"N": raw}, "N", 7)
        assert error.value.variable == "N"
    with pytest.raises(config.ConfigError, match="between 1 and 65535"):
        config.integer({"N": "0"}, "N", 1, minimum=1, maximum=65535)
    with pytest.raises(config.ConfigError, match="at least 0"):
        config.integer({"N": "-1"}, "N", 1)


def test_url_checks_scheme_and_host():
    assert config.url({"U": "https://id.example.com/"}, "U", "http://x", ("http", "https")) == "https://id.example.com"
    assert config.url({}, "U", "http://127.0.0.1:8001", ("http", "https")) == "http://127.0.0.1:8001"
    for bad in ("ftp://x", "x", "javascript:alert(1)", "http://"):
        with pytest.raises(config.ConfigError) as error:
            config.url({"U": bad}, "U", "http://x", ("http", "https"))
        assert error.value.variable == "U"


def test_database_url_accepts_sqlite_and_postgresql_only(tmp_path):
    assert config.database_url({"VAR_DIR": str(tmp_path)}, "DB", "identity") == f"sqlite:///{tmp_path / 'identity.db'}"
    assert config.database_url({"DB": "postgresql://u:p@h/db"}, "DB", "x") == "postgresql+psycopg://u:p@h/db"
    assert config.database_url({"DB": "postgresql+psycopg://h/db"}, "DB", "x") == "postgresql+psycopg://h/db"
    for bad in ("mysql://x", "postgresql+asyncpg://h/db", "oracle://x", "file.db"):
        with pytest.raises(config.ConfigError) as error:
            config.database_url({"DB": bad}, "DB", "x")
        assert error.value.variable == "DB"


def test_broker_url_accepts_kombu_transports_we_support():
    assert config.broker_url({}) == "filesystem://"
    for good in ("memory://", "amqp://guest:guest@rabbitmq:5672//", "amqps://u:p@h//", "pyamqp://h//"):
        assert config.broker_url({"BROKER_URL": good}) == good
    for bad in ("http://x", "redis://x", "sqs://x"):
        with pytest.raises(config.ConfigError) as error:
            config.broker_url({"BROKER_URL": bad})
        assert error.value.variable == "BROKER_URL"


def test_secret_rules_depend_on_production():
    assert config.secret({}, "S", production=False) == config.DEVELOPMENT_SECRET
    assert config.secret({"S": "short"}, "S", production=False) == "short"
    assert config.secret({"S": GOOD_SECRET}, "S", production=True) == GOOD_SECRET
    for env in ({}, {"S": config.DEVELOPMENT_SECRET}, {"S": "x" * 31}):
        with pytest.raises(config.ConfigError) as error:
            config.secret(env, "S", production=True)
        assert error.value.variable == "S"


def test_app_env_and_json_object():
    assert config.app_env({}) == "development"
    assert config.app_env({"APP_ENV": "production"}) == "production"
    with pytest.raises(config.ConfigError):
        config.app_env({"APP_ENV": "Production"})
    assert config.json_object({}, "J") == {}
    assert config.json_object({"J": '{"a": 1}'}, "J") == {"a": 1}
    for bad in ("[1]", "{", '"text"'):
        with pytest.raises(config.ConfigError) as error:
            config.json_object({"J": bad}, "J")
        assert error.value.variable == "J"


def test_load_or_exit_prints_one_line_and_exits_2(capsys):
    with pytest.raises(SystemExit) as stopped:
        config.load_or_exit(lambda env: config.integer(env, "IDENTITY_PORT", 8001, maximum=65535),
                            {"IDENTITY_PORT": "99999"})
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("threshold: configuration error: IDENTITY_PORT: ")
    assert config.load_or_exit(lambda env: env["X"], {"X": "ok"}) == "ok"


@pytest.mark.parametrize("service", ["identity", "tenancy", "notifier", "web"])
def test_every_service_reads_the_shared_settings_the_same_way(service, tmp_path):
    settings_class = importlib.import_module(f"services.{service}.settings").Settings
    prefix = service.upper()
    env = {"VAR_DIR": str(tmp_path), "BUS_QUEUE_TYPE": "quorum", "LOG_LEVEL": "debug", "BIND_HOST": "0.0.0.0",
           f"{prefix}_PORT": "9100", f"{prefix}_DATABASE_URL": "postgresql://db/x", "BROKER_URL": "memory://"}

    settings = settings_class.from_env(env)

    assert isinstance(settings, config.ServiceSettings)
    assert (settings.bus_queue_type, settings.log_level, settings.log_format) == ("quorum", "DEBUG", "text")
    assert (settings.bind_host, settings.port) == ("0.0.0.0", 9100)
    assert settings.database_url == "postgresql+psycopg://db/x" and settings.broker_url == "memory://"
    assert settings.var_dir == tmp_path and not settings.production
    production = settings_class.from_env({**env, "APP_ENV": "production", "SECRET_KEY": GOOD_SECRET,
                                          "TENANCY_CLIENT_SECRET": GOOD_SECRET, "WEB_CLIENT_SECRET": GOOD_SECRET,
                                          "INVITATION_ACCEPT_URL": "https://app.example.com/join",
                                          "TOTP_ENCRYPTION_KEYS": "cHJvZHVjdGlvbi1vbmx5LXRvdHAta2V5LTEyMzQ1Njc="})
    assert production.production and production.log_format == "json"


def test_log_level_takes_the_names_logging_knows():
    assert config.log_level({}) == "INFO"
    assert config.log_level({"LOG_LEVEL": "warning"}) == "WARNING"
    with pytest.raises(config.ConfigError) as error:
        config.log_level({"LOG_LEVEL": "verbose"})
    assert error.value.variable == "LOG_LEVEL" and "'VERBOSE'" in str(error.value)
