"""deploy/gunicorn.conf.py with the worker class the bench asks for (`GUNICORN_CONF` points here).

BENCH_WORKER=sync: gunicorn's sync worker (identity's ProblemWorker), which closes every connection;
BENCH_WORKER=gthread: the threaded worker (GUNICORN_THREADS threads, 4 by default), which keeps connections
alive. Everything else (workers, keep-alive timeout, max_requests recycling, the access log, hooks) is deploy's.
"""
import os
from pathlib import Path

from shared import processes as _processes

_deploy = Path(__file__).resolve().parents[1] / "deploy" / "gunicorn.conf.py"
exec(compile(_deploy.read_text(), str(_deploy), "exec"))  # noqa: S102 - the project's own config file

# shared.processes.WORKERS names the production classes where deploy's config offers the choice.
_classes = getattr(_processes, "WORKERS", {"sync": "shared.processes.ProblemWorker", "gthread": "gthread"})
_worker = os.environ.get("BENCH_WORKER", "")
if _worker in _classes:
    worker_class = _classes[_worker]
    threads = int(os.environ.get("GUNICORN_THREADS", "4")) if _worker == "gthread" else 1
