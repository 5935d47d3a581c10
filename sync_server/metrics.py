"""What `GET /metrics` shows (SPEC section 13), with `prometheus-client`: requests by route
template and status, their latency, scans by status and reason, push items by result, webhook
attempts by outcome, and the webhook backlog (read from the database when scraped). With
`PROMETHEUS_MULTIPROC_DIR` set before the first import (`doorcheck server` does it), every worker
process writes its values there and a scrape adds them up.

    observe_request("POST", "/v1/checkpoints/{checkpoint_id}/scans", 200, 0.004)
    body = render(engine)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.engine import Engine

__all__ = [
    "CONTENT_TYPE",
    "MULTIPROCESS",
    "count_attempt",
    "count_push",
    "count_scan",
    "observe_request",
    "render",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# the mode the values below were created in (prometheus-client reads the variable on import)
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

_REQUESTS = Counter(
    "doorcheck_http_requests",
    "HTTP requests answered, by method, route template and status code",
    ["method", "route", "status"],
)
_LATENCY = Histogram(
    "doorcheck_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
_SCANS = Counter(
    "doorcheck_scans",
    "Readings decided by the server: online scans and uploaded offline ones (`source`), by "
    "verdict status and reason",
    ["source", "status", "reason"],
)
_PUSH_ITEMS = Counter(
    "doorcheck_push_items", "Items devices uploaded with /v1/sync/push, by result", ["result"]
)
_ATTEMPTS = Counter(
    "doorcheck_webhook_attempts", "Webhook delivery attempts, by outcome", ["outcome"]
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(method: str, route: str | None, status: int, seconds: float) -> None:
    """One answered request. `route` is the matched template (never the raw path: ids would
    make a series each); None for a path no route matched."""
    method = method if method in _METHODS else "OTHER"
    template = route or "unmatched"
    _REQUESTS.labels(method, template, str(status)).inc()
    _LATENCY.labels(method, template).observe(seconds)


def count_scan(source: str, status: str, reason: str) -> None:
    _SCANS.labels(source, status, reason).inc()


def count_push(results: Iterable[str]) -> None:
    for result in results:
        _PUSH_ITEMS.labels(result).inc()


def count_attempt(ok: bool) -> None:
    _ATTEMPTS.labels("success" if ok else "failure").inc()


class _Backlog(Collector):
    """Webhook work not done yet, counted when scraped: messages waiting to be fanned out to
    their endpoints, and deliveries pending or waiting for a retry."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "doorcheck_webhook_backlog",
            "Webhook messages not yet fanned out and deliveries not yet done",
            labels=["stage"],
        )
        with self.engine.connect() as conn:
            fanout = conn.execute(_FANOUT).scalar_one()
            due = conn.execute(_DUE).scalar_one()
        family.add_metric(["fanout"], fanout)
        family.add_metric(["delivery"], due)
        yield family


_FANOUT = text("SELECT count(*) FROM webhook_fanout")
_DUE = text("SELECT count(*) FROM webhook_deliveries WHERE state IN ('pending', 'retrying')")


def render(engine: Engine) -> bytes:
    """The Prometheus text format: every process's values, then the backlog."""
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
        values = generate_latest(processes)
    else:
        values = generate_latest(REGISTRY)
    backlog = CollectorRegistry(auto_describe=False)
    backlog.register(_Backlog(engine))
    return values + generate_latest(backlog)
