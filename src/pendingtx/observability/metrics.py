"""Prometheus metrics: requests and their latency as served, jobs and the queue as the database has them.

Every application instance owns a `Metrics` with its own registry (never prometheus-client's
global one). Request figures are counted in this process as requests finish; job figures are
read from the database when `/metrics` is scraped, so that every API process of a scaled-out
deployment reports the same, true numbers whichever processes did the work.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from pendingtx.domain.jobs import JobStatus, QueueSnapshot

# Request latency buckets, in seconds: the status GET answers in well under a millisecond.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BUCKET_NAMES = [*(repr(b) for b in LATENCY_BUCKETS), "+Inf"]
# Methods outside this set are counted as "other", so that no client can create series at will.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _Series:
    """One (route, method, status): observations per latency bucket (not cumulative), and their sum."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0


class RequestMetrics:
    """Requests by route template, method and status, with latency histograms.

    `observe` runs on the event loop for every request, so it is a dictionary lookup and two
    additions, with no lock and no label resolution (the ASGI app calls it from one thread only;
    `collect` copies the series before reading them).
    """

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, int], _Series] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        key = (route, method if method in _METHODS else "other", status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        series.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        series.total += seconds

    def collect(self) -> Iterator[Metric]:
        """The counters and histograms, for the registry."""
        labels = ["route", "method", "status"]
        requests = CounterMetricFamily(
            "pendingtx_http_requests",
            "HTTP requests served, by route template, method and status",
            labels=labels,
        )
        latency = HistogramMetricFamily(
            "pendingtx_http_request_duration_seconds",
            "Time from receiving a request to its last byte handed to the server",
            labels=labels,
        )
        for (route, method, status), series in sorted(self._series.copy().items()):
            values = [route, method, str(status)]
            cumulative, running = [], 0
            for name, count in zip(_BUCKET_NAMES, series.buckets, strict=True):
                running += count
                cumulative.append((name, float(running)))
            requests.add_metric(values, running)
            latency.add_metric(values, cumulative, series.total)
        yield requests
        yield latency


class QueueMetrics:
    """Exposes the latest `QueueSnapshot`, taken by the /metrics endpoint just before it collects."""

    def __init__(self) -> None:
        self.snapshot: QueueSnapshot | None = None

    def collect(self) -> Iterator[Metric]:
        """The job gauges, and whether the database could be read for them."""
        snapshot = self.snapshot
        yield GaugeMetricFamily(
            "pendingtx_database_up",
            "1 when this scrape could read the job figures from the database, else 0",
            value=0 if snapshot is None else 1,
        )
        if snapshot is None:
            return
        by_status = GaugeMetricFamily("pendingtx_jobs", "Jobs by status", labels=["status"])
        for status in JobStatus:
            by_status.add_metric([status.value], snapshot.jobs_by_status.get(status.value, 0))
        yield by_status
        yield GaugeMetricFamily(
            "pendingtx_queue_depth",
            "Jobs waiting for a worker: Submitted, or In Progress under an expired lease",
            value=snapshot.waiting,
        )
        yield GaugeMetricFamily(
            "pendingtx_oldest_waiting_job_age_seconds",
            "Age of the oldest waiting job since it was submitted (0 when none waits)",
            value=snapshot.oldest_waiting_seconds,
        )
        yield CounterMetricFamily(
            "pendingtx_job_takeovers",
            "Claims of a job that an earlier claim did not finish (lease takeovers, rescues from dead "
            "workers, retries after an error), counted in job_claims by every process",
            value=snapshot.takeovers,
        )


class Metrics:
    """The metrics of one application instance, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = RequestMetrics()
        self.queue = QueueMetrics()
        self.registry.register(self.requests)
        self.registry.register(self.queue)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def exposition(self, snapshot: QueueSnapshot | None, accept: str | None) -> tuple[bytes, str]:
        """The body and content type of a scrape, in the format the `Accept` header asks for."""
        self.queue.snapshot = snapshot
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type
