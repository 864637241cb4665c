"""Structured logs (one JSON object a line) and HTTP metrics labelled by route template."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The services' metrics are Prometheus's (the middleware below, each service's own); FastAPI's
# OpenTelemetry hooks, unused, would look up their providers on every request. Every app passes
# this as ``FastAPI(telemetry=...)``.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiosqlite logs every statement with its values at DEBUG: a channel secret among them;
    # httpx logs each URL it calls at INFO (a Slack or Teams URL is a credential), httpcore a
    # receiver's answer headers at DEBUG (a token it echoes)
    for noisy in ("aiokafka", "kafka", "httpx", "httpcore", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").disabled = True  # the metrics below count requests


HTTP_REQUESTS = Counter(
    "salespulse_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "salespulse_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
_UNLABELLED = {"/healthz", "/readyz", "/metrics"}


class HttpMetricsMiddleware:
    """Counts requests by route template; health probes and unmatched paths are not labelled."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        self._initialised = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._initialised:  # the first scope, lifespan or request, carries the app
            self._initialised = True
            initialise_http_metrics(scope.get("app"), self.service)
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route is not None and route not in _UNLABELLED:
                method = scope["method"]
                HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
                HTTP_LATENCY.labels(self.service, method, route).observe(
                    time.perf_counter() - started
                )


def initialise_http_metrics(app: Any, service: str) -> None:
    """A latency series per route template and method, at 0, before the first request: the
    dashboards' per-route panels show 0, not "No data", on a fresh deployment."""
    for route in getattr(app, "routes", ()):
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path is None or not methods or path in _UNLABELLED:
            continue
        for method in methods:
            HTTP_LATENCY.labels(service, method, path)


async def metrics_endpoint(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
