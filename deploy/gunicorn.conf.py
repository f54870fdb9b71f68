"""gunicorn settings for every Threshold HTTP service (`python -m services.<name> serve` uses this file)."""
import json
import multiprocessing
import os

# Password hashing is CPU-bound, so sync workers, one per core; override with WEB_CONCURRENCY.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
# gunicorn's sync worker whose own error answers (a malformed request) are problem+json, not HTML.
worker_class = "shared.processes.ProblemWorker"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 20))
keepalive = 5
max_requests = 10000
max_requests_jitter = 1000
accesslog = "-" if os.environ.get("ACCESS_LOG", "1") == "1" else None
access_log_format = json.dumps({
    "time": "%(t)s", "remote": "%(h)s", "method": "%(m)s", "path": "%(U)s", "status": "%(s)s",
    "bytes": "%(B)s", "duration_us": "%(D)s", "request_id": "%({x-request-id}o)s",
})


def on_starting(server):
    # With several workers, /metrics must merge every worker's samples.
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

# Several gunicorn masters run side by side on one machine (make run); none needs the control socket.
control_socket_disable = True


def post_worker_init(worker):
    # Application logs (threshold.*) as JSON lines in production, with the request id; LOG_LEVEL and
    # LOG_FORMAT come from the settings a service's app was built with (bench's bare apps have none).
    from shared import logs
    from shared.service_app import SETTINGS

    settings = getattr(worker.wsgi, "extensions", {}).get(SETTINGS)
    if settings is not None:
        logs.configure(settings.log_level, settings.log_format)
