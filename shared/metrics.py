"""Prometheus metrics. Under gunicorn with PROMETHEUS_MULTIPROC_DIR set, every worker's samples are merged."""
from __future__ import annotations

import os

from flask import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter("threshold_http_requests_total", "HTTP requests answered",
                        ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "threshold_http_request_duration_seconds", "HTTP request latency", ["service", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """The request counter and latency histogram of one service.

    The labelled children are kept per (method, route, status): looking one up through `labels()` costs
    more than counting. Methods outside the usual ones count as "other", so a client cannot grow the
    label set (and this cache) without bound; routes are URL rules, never raw paths.
    """

    def __init__(self, service: str):
        self.service = service
        self._children: dict[tuple[str, str, int], tuple] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method if method in METHODS else "other", route, status)
        children = self._children.get(key)
        if children is None:
            children = (HTTP_REQUESTS.labels(self.service, key[0], route, str(status)),
                        HTTP_LATENCY.labels(self.service, route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def exposition(collectors=()) -> Response:
    """Prometheus text: this process's (or, in multiprocess mode, every process's) samples, plus
    `collectors` that compute their values at scrape time (queue depths, backlogs)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    text = generate_latest(registry)
    if collectors:
        scraped = CollectorRegistry(auto_describe=False)
        for collector in collectors:
            scraped.register(collector)
        text += generate_latest(scraped)
    return Response(text, mimetype=CONTENT_TYPE_LATEST)
