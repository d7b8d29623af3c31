"""The service's Prometheus metrics (``GET /metrics``), with prometheus_client:

    fashion_cnn_http_requests_total{method, route, status}        every request, the refused ones too
    fashion_cnn_http_request_duration_seconds{method, route}      how long each took to answer (a histogram)
    fashion_cnn_predictions_total{route, class}                   each picture classified, by its predicted class
    fashion_cnn_out_of_distribution_total{route}                  answers with ``in_distribution: false``

and prometheus_client's own process and Python series (``process_*``, ``python_*``).

``route`` is the route's template (``/predict``, ``/fonts/{name}``, ``/static/{path}``), never the path a client
sent, so a scanner trying a million URLs makes one series (``unmatched``), not a million; a method outside
``METHODS`` is ``other``. The counting middleware runs outside every other one, so a request the guards refuse
(431, a foreign Host, a body over the limit) is counted as well. Each app has its registry: the service is one
process whose ``--workers`` are threads, all counting into it, so one scrape sees every request.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, GCCollector, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from starlette.routing import Match

from .openapi import COMMON

#: The routes whose answers are predictions, counted by class.
PREDICTION_ROUTES = ("/predict", "/predict/batch")
#: The methods counted by name; any other is ``other`` (a client may send any token as a method).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The latency histogram's buckets in seconds: a prediction takes milliseconds, a refusal less; a request may
#: wait ``request_seconds`` (10 s) for a worker, and a slow body ``body_timeout`` (60 s) before its 408.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
UNMATCHED = "unmatched"
METRICS_ROUTE = "/metrics"


class ServiceMetrics:
    """The service's counters and histogram, in a registry of their own.

    Args:
        classes: the model's class names (from its metadata): every class starts at 0 on every prediction
            route, so a class never predicted is a 0, not a missing series.

    Example:
        >>> metrics = ServiceMetrics(["Shirt", "Sneaker"])
        >>> metrics.count_answers("/predict", [{"label": "Sneaker", "in_distribution": False}, {"file": "x", "error": "...", "status": 415}])
        >>> metrics.registry.get_sample_value("fashion_cnn_predictions_total", {"route": "/predict", "class": "Sneaker"})
        1.0
        >>> metrics.registry.get_sample_value("fashion_cnn_out_of_distribution_total", {"route": "/predict"})
        1.0
    """

    def __init__(self, classes: Iterable[str]):
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "fashion_cnn_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "fashion_cnn_http_request_duration_seconds",
            "Seconds from a request's arrival to the end of its answer, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.predictions = Counter(
            "fashion_cnn_predictions",
            "Pictures classified, by route and predicted class (a batch counts each picture).",
            ["route", "class"],
            registry=registry,
        )
        self.out_of_distribution = Counter(
            "fashion_cnn_out_of_distribution",
            "Predictions answered with in_distribution false: the picture does not look like the training data.",
            ["route"],
            registry=registry,
        )
        for route in PREDICTION_ROUTES:
            self.out_of_distribution.labels(route)
            for name in classes:
                self.predictions.labels(route, name)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)

    def count_answers(self, route: str, answers: Iterable[dict]) -> None:
        """Count the predictions among ``answers`` (a batch's errors are not predictions) by class, and those
        with ``in_distribution`` false; an answer without that field is not counted as out of distribution."""
        for answer in answers:
            if "label" in answer:
                self.predictions.labels(route, answer["label"]).inc()
                if answer.get("in_distribution") is False:
                    self.out_of_distribution.labels(route).inc()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "other"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The registry in the format the ``Accept`` header asks for (OpenMetrics or Prometheus' text format,
        prometheus_client's choice), and its content type; the text format when the header cannot be read."""
        try:
            encode, content_type = choose_encoder(accept or "")
        except (TypeError, ValueError):  # `version=abc`: prometheus_client compares the parts as numbers
            encode, content_type = choose_encoder("")  # no header: the text format
        return encode(self.registry), content_type


class RequestMetrics:
    """ASGI middleware: each HTTP request's status and duration, by its route's template (``ServiceMetrics.observe``).

    Args:
        app: the ASGI app it wraps.
        metrics: where to count.
        router: whose routes name the request (read per request: routes added after the middleware count too).
    """

    def __init__(self, app, metrics: ServiceMetrics, router):
        self.app, self.metrics, self.router = app, metrics, router

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), None

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # No answer started: the exception goes on to Starlette's error handler, which answers 500.
            self.metrics.observe(scope["method"], route_of(self.router.routes, scope), status or 500, time.perf_counter() - started)


def route_of(routes, scope) -> str:
    """The template of the route ``scope`` goes to (``/fonts/{name}``); a route that matches the path but not
    the method (405) names it too; ``UNMATCHED`` when none does (404)."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route.path_format
        if match is Match.PARTIAL and partial is None:
            partial = route.path_format
    return partial or UNMATCHED


def add_metrics(app: FastAPI, metrics: ServiceMetrics) -> None:
    """``GET /metrics`` and the middleware that counts every request, outside every other middleware added before."""
    app.add_middleware(RequestMetrics, metrics=metrics, router=app.router)

    @app.get(
        METRICS_ROUTE,
        summary="Prometheus metrics: requests, latencies, predictions by class",
        response_class=Response,
        responses={
            **COMMON,
            200: {
                "description": "The metrics in Prometheus' text format, or OpenMetrics when the `Accept` header asks for "
                "`application/openmetrics-text` (as Prometheus does).",
                "content": {"text/plain": {"schema": {"type": "string"}}, "application/openmetrics-text": {"schema": {"type": "string"}}},
            },
        },
        description="Requests by method, route template and status (`fashion_cnn_http_requests_total`), their latency "
        "(`fashion_cnn_http_request_duration_seconds`), pictures classified by predicted class (`fashion_cnn_predictions_total`) "
        "and answers out of the training distribution (`fashion_cnn_out_of_distribution_total`). A scrape is counted in the next one.",
    )
    async def prometheus_metrics(request: Request):
        body, content_type = metrics.exposition(request.headers.get("accept"))
        return Response(body, media_type=content_type)
