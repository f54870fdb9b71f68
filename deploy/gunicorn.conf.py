"""gunicorn settings for every Threshold HTTP service (`python -m services.<name> serve` uses this file).

Every knob comes from `shared.config.ServerSettings` (GUNICORN_*, WEB_CONCURRENCY, ACCESS_LOG), read and
validated once: a bad value is one line and exit 2, as for the services' own settings."""
import json

from shared import processes
from shared.config import ServerSettings, load_or_exit

# (gunicorn reads every module-level name that is one of its settings, `config` among them.)
server_settings = load_or_exit(ServerSettings.from_env)

# One worker per core (password hashing is CPU-bound). gthread, the default, keeps connections alive and
# serves `threads` requests at once per worker; its own error answers, like the sync worker's, are
# problem+json (shared.processes).
workers = server_settings.workers
worker_class = processes.WORKERS[server_settings.worker_class]
threads = server_settings.threads if server_settings.worker_class == "gthread" else 1
timeout = server_settings.timeout
graceful_timeout = server_settings.graceful_timeout
keepalive = server_settings.keepalive
max_requests = 10000
max_requests_jitter = 1000
# The app is built once in the master and the workers share its pages (see pre_fork); the app factory
# opens nothing that a fork could share (engines connect on first use; pre_fork closes what it used).
preload_app = server_settings.preload
accesslog = "-" if server_settings.access_log else None
access_log_format = json.dumps({
    "time": "%(t)s", "remote": "%(h)s", "method": "%(m)s", "path": "%(U)s", "status": "%(s)s",
    "bytes": "%(B)s", "duration_us": "%(D)s", "request_id": "%({x-request-id}o)s",
})
# Several gunicorn masters run side by side on one machine (make run); none needs the control socket.
control_socket_disable = True


def on_starting(server):
    processes.on_starting(server_settings)


def pre_fork(server, worker):
    processes.before_fork()


def child_exit(server, worker):
    processes.worker_exited(server_settings, worker.pid)


def post_worker_init(worker):
    # Application logs (threshold.*) as JSON lines in production, with the request id; LOG_LEVEL and
    # LOG_FORMAT come from the settings a service's app was built with (bench's bare apps have none).
    from shared import logs
    from shared.service_app import SETTINGS

    settings = getattr(worker.wsgi, "extensions", {}).get(SETTINGS)
    if settings is not None:
        logs.configure(settings.log_level, settings.log_format)
