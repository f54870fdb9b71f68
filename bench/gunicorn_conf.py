"""deploy/gunicorn.conf.py with the worker class the bench asks for (`GUNICORN_CONF` points here).

BENCH_WORKER=sync: gunicorn's sync worker (identity's ProblemWorker), which closes every connection;
BENCH_WORKER=gthread: gunicorn's threaded worker with BENCH_THREADS threads, which keeps connections alive.
Everything else (workers, keep-alive timeout, max_requests recycling, the access log, hooks) is deploy's.
"""
import os
from pathlib import Path

_deploy = Path(__file__).resolve().parents[1] / "deploy" / "gunicorn.conf.py"
exec(compile(_deploy.read_text(), str(_deploy), "exec"))  # noqa: S102 - the project's own config file

if os.environ.get("BENCH_WORKER") == "gthread":
    worker_class = "gthread"
    threads = int(os.environ.get("BENCH_THREADS", "4"))
elif os.environ.get("BENCH_WORKER") == "sync":
    worker_class = "shared.processes.ProblemWorker"
    threads = 1
