"""Prometheus metrics: counters the code bumps where things happen, gauges read at scrape time.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR (set by `peerline.gunicorn_conf`) makes every web
worker write its counters to files there, and /metrics sums them. `peerline worker` is one
process with its own registry, served on PEERLINE_WORKER_METRICS_PORT when that is set.
No label ever holds a number, a name or a word anyone wrote.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import InterfaceError, OperationalError

log = logging.getLogger(__name__)

WEBHOOKS = Counter(
    "peerline_webhooks",
    "Twilio webhooks answered, by endpoint and outcome",
    ["endpoint", "outcome"],
)
TEXTS_SENT = Counter("peerline_texts_sent", "Texts the provider accepted")
SEND_ERRORS = Counter(
    "peerline_send_errors", "Send attempts the provider refused, by its error code", ["code"]
)
FIRST_OFFER = Histogram(
    "peerline_time_to_first_offer_seconds",
    "From a texter joining the queue to the first offer of their chat to a supporter",
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
)
OFFERS_EXPIRED = Counter("peerline_offers_expired", "Offers that timed out untaken")
CRISIS_FLAGS = Counter(
    "peerline_crisis_flags", "Conversations flagged for safety, by who raised it", ["source"]
)
BACKEND_ERRORS = Counter(
    "peerline_backend_errors", "Errors reaching Redis or the database", ["backend"]
)


def webhook_answered(endpoint: str, outcome: str) -> None:
    """Count one webhook answered."""
    _webhook_child(endpoint, outcome).inc()


# `labels()` takes a lock and builds a key on every call; the pairs are few (the routes times
# the outcomes), so each one's child is looked up once.
@functools.lru_cache(maxsize=256)
def _webhook_child(endpoint: str, outcome: str) -> Any:
    return WEBHOOKS.labels(endpoint=endpoint, outcome=outcome)


def first_offer(queued_at: datetime | None, now: datetime) -> None:
    """Record how long a texter waited for their chat's first offer."""
    if queued_at is not None:
        FIRST_OFFER.observe(max(0.0, (now - queued_at).total_seconds()))


def backend_error(backend: str) -> None:
    """Count an error reaching `redis` or `database`."""
    BACKEND_ERRORS.labels(backend=backend).inc()


def send_error(code: int | None) -> None:
    """Count a send the provider refused."""
    SEND_ERRORS.labels(code=str(code) if code else "none").inc()


def database_error(context: ExceptionContext) -> None:
    """Count a lost or refused database connection (SQLAlchemy's handle_error event)."""
    lost = (OperationalError, InterfaceError)
    if context.is_disconnect or isinstance(context.sqlalchemy_exception, lost):
        backend_error("database")


# What /metrics reads at scrape time: each source yields (labels, value) pairs.
Source = Callable[[], Iterable[tuple[dict[str, str], float]]]


class LiveGauges(Collector):
    """Gauges read from Redis and the database when Prometheus scrapes, not counted along."""

    def __init__(self, sources: dict[str, tuple[str, Source]]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        """Read each source; one that fails is left out and counted, the rest are shown."""
        for name, (help_text, source) in self.sources.items():
            try:
                samples = list(source())
            except Exception as exc:  # a scrape must not fail because Redis or the db is away
                log.warning("metric %s unavailable (%s)", name, type(exc).__name__)
                backend_error(_backend_of(exc))
                continue
            labels = sorted(samples[0][0]) if samples else []
            family = GaugeMetricFamily(name, help_text, labels=labels)
            for sample_labels, value in samples:
                family.add_metric([sample_labels[k] for k in labels], value)
            yield family


def _backend_of(exc: Exception) -> str:
    return "redis" if type(exc).__module__.startswith("redis") else "database"


def exposition(live: Collector | None = None) -> bytes:
    """Return the text Prometheus reads: this process's (or every web worker's) metrics."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=folder)
    else:
        registry = CollectorRegistry()
        registry.register(_Default())
    if live is not None:
        registry.register(live)
    return generate_latest(registry)


class _Default(Collector):
    """The process-wide registry, wrapped so it can sit beside the live gauges."""

    def collect(self) -> Iterator[Metric]:
        """Yield every metric of the default registry."""
        yield from REGISTRY.collect()
