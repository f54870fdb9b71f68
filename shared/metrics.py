"""Prometheus metrics. Under gunicorn with PROMETHEUS_MULTIPROC_DIR set, every worker's samples are merged."""
from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client import REGISTRY

HTTP_REQUESTS = Counter("threshold_http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "threshold_http_request_duration_seconds", "HTTP request latency", ["service", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def instrument(app: Flask, service: str) -> None:
    @app.before_request
    def _start_timer():
        g.request_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        HTTP_REQUESTS.labels(service, request.method, route, str(response.status_code)).inc()
        started = g.get("request_started")
        if started is not None:
            HTTP_LATENCY.labels(service, route).observe(time.perf_counter() - started)
        return response


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
