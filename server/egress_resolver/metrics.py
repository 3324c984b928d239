"""Prometheus metrics with go-grpc-prometheus names, so stock gRPC dashboards work.

Per call: `grpc_server_started_total`, `grpc_server_handled_total{grpc_code}`
(codes spelled as Go spells them: "OK", "NotFound", ...) and
`grpc_server_handling_seconds`, with label children bound once so a call costs
a few dictionary-free increments. Cache figures are read from the cache when
Prometheus scrapes, so hits pay nothing for them. No label ever holds a
requested name.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from egress_resolver.cache import CacheStats
from egress_resolver.errors import Reason, ResolveError
from egress_resolver.handler_wrap import Handlers, rewrap

_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
T = TypeVar("T")
_METHOD_LABELS = ("grpc_type", "grpc_service", "grpc_method")


def go_code_name(code: grpc.StatusCode) -> str:
    """`grpc.StatusCode.NOT_FOUND` → "NotFound", as Go's codes.Code.String()."""
    if code is grpc.StatusCode.OK:
        return "OK"
    return "".join(part.capitalize() for part in code.name.split("_"))


class _CacheCollector(Collector):
    def __init__(self, stats: Callable[[], CacheStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._stats()
        for name, value, text in (
            ("hits", stats.hits, "lookups answered from the cache"),
            ("misses", stats.misses, "lookups not in the cache"),
            ("evictions", stats.evictions, "entries evicted for lack of room"),
        ):
            yield CounterMetricFamily(f"egress_resolver_cache_{name}", text, value=value)
        yield GaugeMetricFamily(
            "egress_resolver_cache_entries", "entries in the cache", value=stats.entries
        )


class Metrics:
    """Every metric of one server process, in its own registry."""

    def __init__(self, cache_stats: Callable[[], CacheStats]) -> None:
        self.registry = CollectorRegistry()
        self._http: Any = None
        r = self.registry
        self.started = Counter(
            "grpc_server_started_total", "RPCs started on the server.", _METHOD_LABELS, registry=r
        )
        self.handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, regardless of success or failure.",
            (*_METHOD_LABELS, "grpc_code"),
            registry=r,
        )
        self.handling = Histogram(
            "grpc_server_handling_seconds",
            "Response latency of RPCs handled by the server.",
            _METHOD_LABELS,
            buckets=_BUCKETS,
            registry=r,
        )
        self.handler_seconds = Histogram(
            "egress_resolver_handler_seconds",
            "Time to resolve a cache miss through the policy.",
            buckets=_BUCKETS,
            registry=r,
        )
        self.handler_errors = Counter(
            "egress_resolver_handler_errors_total",
            "Cache misses that failed, by reason.",
            ("reason",),
            registry=r,
        )
        self.reloads = Counter(
            "egress_resolver_reloads_total", "Policy loads, by result.", ("result",), registry=r
        )
        self.generation = Gauge(
            "egress_resolver_policy_generation", "Generation of the policy serving.", registry=r
        )
        for result in ("success", "failure"):
            self.reloads.labels(result)
        for reason in Reason:
            self.handler_errors.labels(reason.value)
        r.register(_CacheCollector(cache_stats))

    def serve(self, address: str) -> str:
        """Serve /metrics on HOST:PORT from a background thread; returns the bound address."""
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        server, _thread = start_http_server(int(port), addr=host, registry=self.registry)
        self._http = server
        bound = f"[{host}]" if ":" in host else host
        return f"{bound}:{server.server_port}"

    def close(self) -> None:
        """Stop serving /metrics."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()

    def timed_loader(self, load: Callable[[str], Awaitable[T]]) -> Callable[[str], Awaitable[T]]:
        """Wrap the miss path: handler time and failures by reason."""
        observe, errors = self.handler_seconds.observe, self.handler_errors

        async def loader(name: str) -> T:
            begun = time.perf_counter()
            try:
                return await load(name)
            except ResolveError as err:
                errors.labels(err.reason.value).inc()
                raise
            finally:
                observe(time.perf_counter() - begun)

        return loader

    def instrument(self, service: str, handlers: Handlers) -> Handlers:
        """The same handlers, each counted and timed."""
        return rewrap(
            handlers,
            lambda method, call: self._unary(service, method, call),
            lambda method, call: self._stream(service, method, call),
        )

    def _children(self, kind: str, service: str, method: str) -> tuple[Any, Any, Any]:
        labels = (kind, service, method)
        handled = {
            code: self.handled.labels(*labels, go_code_name(code)) for code in grpc.StatusCode
        }
        return self.started.labels(*labels), handled, self.handling.labels(*labels)

    def _unary(self, service: str, method: str, call: Any) -> Any:
        started, handled, handling = self._children("unary", service, method)

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started.inc()
            begun = time.perf_counter()
            try:
                return await call(request, context)
            finally:
                handling.observe(time.perf_counter() - begun)
                handled[_code(context)].inc()

        return unary

    def _stream(self, service: str, method: str, call: Any) -> Any:
        started, handled, handling = self._children("server_stream", service, method)

        async def stream(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            started.inc()
            begun = time.perf_counter()
            try:
                async for message in call(request, context):
                    yield message
            finally:
                handling.observe(time.perf_counter() - begun)
                handled[_code(context)].inc()

        return stream


def _code(context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
    return grpc.StatusCode.OK
