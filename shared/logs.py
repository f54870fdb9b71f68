"""Logging: one JSON object per line in production (text in development), with the request id.

The request id comes from the `X-Request-ID` header (or is made up), is returned in the response,
forwarded on internal HTTP calls and stamped on events (`requestid`), so one sign-up can be followed
from identity's access log through the relay and the notifier to the mail. Fields given with
`extra={...}` (event, account_id, ...) become JSON keys. Nothing here logs request bodies.
"""
from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

STANDARD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime",
                                                                                   "request_id", "taskName"}


def current_request_id() -> str | None:
    try:
        from flask import g, has_request_context
    except ImportError:  # pragma: no cover - flask is always installed here
        return None
    return g.get("request_id") if has_request_context() else None


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        entry.update({key: value for key, value in vars(record).items()
                      if key not in STANDARD_ATTRIBUTES and not key.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str, fmt: str) -> None:
    """Root logging at `level`, as JSON lines or text (the settings' log_level and log_format)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
