"""The composition root: the one place that builds every part and wires them.

`App` is one server process: the Lua runner, the cache, the gRPC service with
health and reflection, on the configured listeners. `serve()` runs it until
SIGTERM/SIGINT and reloads on SIGHUP.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from egress_resolver.definitions.codec import EncodedPool, EncodedSource, Packing
from egress_resolver.kumo_api.context import ApiOptions
from egress_resolver.ops.fleet import FleetSubscriber
from egress_resolver.ops.listeners import bind, keepalive_options, secure_unix_sockets
from egress_resolver.ops.metrics import Metrics
from egress_resolver.ops.policy_watcher import PolicyWatcher
from egress_resolver.ops.process_tuning import tune_process
from egress_resolver.ops.settings import Settings
from egress_resolver.runtime.policy_runner import PolicyRunner
from egress_resolver.serving.cache import DefinitionCache
from egress_resolver.serving.cache_values import Started
from egress_resolver.serving.drain import DrainGate
from egress_resolver.serving.explain import Explainer
from egress_resolver.serving.handler_wrap import decode_in_handler
from egress_resolver.serving.invalidate import CacheInvalidator
from egress_resolver.serving.invalidations import InvalidationHub
from egress_resolver.serving.reflection import add_reflection
from egress_resolver.serving.reload import Reloader
from egress_resolver.serving.reports import FailureReports
from egress_resolver.serving.service import SERVICE_NAME, ResolverService
from egress_resolver.serving.source_health import SourceHealth
from egress_resolver.serving.warm import Warmer

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_HEALTH_NAMES = ("", SERVICE_NAME)


def api_options(settings: Settings) -> ApiOptions:
    """What the policy's Lua API reads of the settings."""
    return ApiOptions(
        dns_servers=tuple(settings.dns_servers),
        data_source_limit=settings.data_source_limit_mib * 1024 * 1024,
    )


class App:
    """One server process: policy, cache, service, health, reflection, listeners."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if settings.policy is None:
            raise ValueError("a policy file is required (--policy)")
        self.settings = settings
        self.runner = PolicyRunner(
            settings.policy,
            lua_paths=settings.lua_path,
            handler_timeout=settings.handler_timeout,
            memory_limit=settings.lua_memory_mib * 1024 * 1024,
            clock=clock,
            wall_clock=wall_clock,
            options=api_options(settings),
        )
        self.cache: DefinitionCache[EncodedSource] = DefinitionCache(
            settings.cache_size,
            negative_ttl=settings.negative_ttl,
            max_pending=settings.max_pending_misses,
            clock=clock,
            transient_ttl=settings.transient_error_ttl,
            packing=Packing(EncodedSource),
        )
        self.pool_cache: DefinitionCache[EncodedPool] = DefinitionCache(
            settings.cache_size,
            negative_ttl=settings.negative_ttl,
            max_pending=settings.max_pending_misses,
            clock=clock,
            transient_ttl=settings.transient_error_ttl,
            packing=Packing(EncodedPool),
        )
        self.invalidations = InvalidationHub(log_size=settings.invalidation_log_size)
        self.reloader = Reloader(
            self.runner,
            Warmer(self.runner, self.cache, self.pool_cache, clock),
            self.invalidations,
        )
        self.metrics = Metrics(self.cache.stats) if settings.metrics else None
        self.source_health = SourceHealth(
            clock=clock,
            wall_clock=wall_clock,
            listeners=() if self.metrics is None else (self.metrics,),
        )
        self.source_health.announce = self.invalidations.announce_health
        self.invalidations.in_force = self.source_health.in_force
        self.invalidate = CacheInvalidator(
            self.cache, self.pool_cache, self.source_health, self.invalidations
        )
        load_source: Callable[[str], Started[EncodedSource]] = self.runner.start_source
        if self.metrics is not None:
            load_source = self.metrics.timed_loader(load_source)
        self.service = ResolverService(
            self.cache,
            load_source,
            self.invalidations,
            pool_cache=self.pool_cache,
            load_pool=self.runner.resolve_pool,
            invalidate=self.invalidate,
            allow_invalidate=settings.allow_invalidate,
            health=self.source_health,
        )
        self.runner.resolve_cached = self.service.resolve_for_policy
        self.runner.on_bump_epoch = self.invalidate.drop_everything
        self.fleet = (
            FleetSubscriber(
                settings.invalidation_redis, settings.invalidation_channel, self.invalidate
            )
            if settings.invalidation_redis
            else None
        )
        self.health = health.aio.HealthServicer()
        self.addresses: list[str] = []
        self.metrics_address: str | None = None
        self.watcher: PolicyWatcher | None = None
        self.gate = DrainGate()
        self._health_server: grpc.aio.Server | None = None
        self.health_address: str | None = None
        self._server: grpc.aio.Server | None = None
        self._log = structlog.get_logger("egress_resolver")

    async def start(self) -> None:
        """Listen (health NOT_SERVING), then load the policy and report SERVING."""
        server = grpc.aio.server(
            options=[
                ("grpc.so_reuseport", 1 if self.settings.workers > 1 else 0),
                *keepalive_options(self.settings.keepalive_interval),
            ]
        )
        explainer = Explainer(self.service, self.cache, self.runner, str(self.runner.policy))
        reports = FailureReports(self.service, self.source_health)
        handlers = {
            **self.service.method_handlers(),
            **explainer.method_handlers(),
            **reports.method_handlers(),
        }
        handlers = self.gate.wrap(decode_in_handler(handlers))
        if self.metrics is not None:
            handlers = self.metrics.instrument(SERVICE_NAME, handlers)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),)
        )
        server.add_registered_method_handlers(SERVICE_NAME, handlers)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        if self.settings.reflection:
            add_reflection(server, (SERVICE_NAME, health.SERVICE_NAME))
        for name in _HEALTH_NAMES:
            await self.health.set(name, _NOT_SERVING)
        old_umask = os.umask(0o177)  # unix sockets are born 0600, never wider
        try:
            self.addresses = [bind(server, a, self.settings) for a in self.settings.listen]
            await server.start()
        finally:
            os.umask(old_umask)
        secure_unix_sockets(self.addresses, self.settings.unix_socket_mode)
        self._server = server
        self._log.info("listening", addresses=self.addresses)
        if self.settings.health_listen is not None:
            await self._start_health_listener(self.settings.health_listen)
        if self.metrics is not None and self.settings.metrics is not None:
            self.metrics_address = self.metrics.serve(self.settings.metrics)
            self._log.info("metrics", address=self.metrics_address)
        tune_process()
        await self.reload()
        if self.fleet is not None:
            self.fleet.start()
        if self.settings.watch_interval > 0:
            self.watcher = PolicyWatcher(
                lambda: self.runner.files, self.reload, self.settings.watch_interval
            )
            self.watcher.start()

    async def _start_health_listener(self, address: str) -> None:
        """A second server with grpc.health.v1 only, for kubelet gRPC probes,
        which connect to the pod IP: it can face the network without exposing
        the resolver (so it needs no --allow-remote)."""
        health_server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, health_server)
        port = health_server.add_insecure_port(address)
        if port == 0:
            raise OSError(f"--health-listen {address!r}: cannot bind")
        await health_server.start()
        self._health_server = health_server
        self.health_address = f"{address.rpartition(':')[0]}:{port}"
        self._log.info("health listening", address=self.health_address)

    async def reload(self) -> bool:
        """Load the policy again and swap it in warm (serving/reload.py); count it,
        and report SERVING once a policy serves."""
        loaded = await self.reloader.reload(self.settings.reload_warm_names)
        if self.metrics is not None:
            self.metrics.reloads.labels("success" if loaded else "failure").inc()
            self.metrics.generation.set(self.runner.generation)
        if not loaded:
            return False
        for name in _HEALTH_NAMES:
            await self.health.set(name, _SERVING)
        return True

    async def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING first, then refuse new calls and drain in-flight ones."""
        grace = self.settings.shutdown_grace if grace is None else grace
        await self.health.enter_graceful_shutdown()
        if self.watcher is not None:
            await self.watcher.stop()
        if self.fleet is not None:
            await self.fleet.stop()
        # New calls (Invalidate among them) are refused before the streams end
        # with OK, so a client whose stream ended so has missed nothing.
        self.gate.refuse_new_calls()
        self.source_health.close()
        self.invalidations.close()
        drained = await self.gate.drain(grace)
        self._log.info("drained" if drained else "grace period over", in_flight=self.gate.in_flight)
        for grpc_server in (self._server, self._health_server):
            if grpc_server is not None:
                await grpc_server.stop(0)
        await self.runner.close_data_sources()
        self.runner.close()
        if self.metrics is not None:
            self.metrics.close()
        self._log.info("stopped")


async def serve(settings: Settings) -> None:
    """Run one server process until SIGTERM or SIGINT; reload on SIGHUP."""
    app = App(settings)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    reloads: set[asyncio.Task[bool]] = set()

    def reload() -> None:
        task = loop.create_task(app.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    # Installed before anything is logged, so a signal sent as soon as the
    # server says it is listening is never met by the default action.
    loop.add_signal_handler(signal.SIGHUP, reload)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await app.start()
    await stopping.wait()
    await app.stop()
