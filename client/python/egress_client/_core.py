"""What the blocking and the asyncio Resolver share: options, caches, coherence
state, pool selectors, and what to do with an answer or a failure."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import grpc

from egress_client._cache import Coherence, DefinitionCache, M
from egress_client._connect import ConnectFailedError, Prepared, ehlo_name, prepare
from egress_client._errors import ResolverError
from egress_client._health import Suspensions, failure_class
from egress_client._options import Options
from egress_client._selector import AllSuspendedError, NoSourcesError, PoolSelector
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1.egress_pool_pb2 import EgressPool
from kumo.egress.v1.egress_source_pb2 import EgressSource

Clock = Callable[[], float]
_log = logging.getLogger("egress_client")
BatchResult = EgressSource | ResolverError
REPORT_FLOOR = 0.25
"""Seconds a connect's report may take past the connect's deadline at most."""
NO_SOURCES = "POOL_HAS_NO_SOURCES"
"""The reason of the error `select` raises for a pool with no weighted source."""


def batch_results(response: pb.BatchGetEgressSourcesResponse) -> list[BatchResult]:
    """One EgressSource or ResolverError per result, in order."""
    return [
        result.source
        if result.WhichOneof("result") == "source"
        else ResolverError.from_status(result.error, result.name)
        for result in response.results
    ]


def waited_too_long(name: str) -> ResolverError:
    """A caller gave up waiting for a lookup another caller started."""
    return ResolverError(
        grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed waiting for a shared lookup", None, name
    )


class Core:
    """Caches (when on), the coherence state and the counters of one Resolver."""

    def __init__(self, options: Options, clock: Clock, wall_clock: Clock) -> None:
        self.options = options
        self.rpcs = 0
        """Unary calls sent to the sidecar (the invalidation stream not counted)."""
        self.stale_served = 0
        """Expired entries served under stale_if_error."""
        self.state: Coherence | None = None
        self.suspensions = Suspensions(wall_clock)
        """The suspensions this client knows (stream, pool answers, reports)."""
        self._selectors: dict[str, PoolSelector] = {}
        if options.cache:
            self.state = Coherence(
                DefinitionCache(
                    options.max_entries,
                    clock=clock,
                    wall_clock=wall_clock,
                    stale_if_error=options.stale_if_error,
                ),
                DefinitionCache(
                    options.max_entries,
                    clock=clock,
                    wall_clock=wall_clock,
                    stale_if_error=options.stale_if_error,
                ),
            )

    def timeout(self, given: float | None) -> float:
        """The deadline of one call."""
        return given or self.options.timeout

    def cached_source(self, name: str) -> EgressSource | None:
        """A live cached source, if caching is on."""
        return self.state.sources.get(name) if self.state is not None else None

    def cached_names(self) -> list[str]:
        """The cached source names, least to most recently used."""
        return self.state.sources.names() if self.state is not None else []

    def cached_pool(self, name: str) -> EgressPool | None:
        """A live cached pool, if caching is on."""
        return self.state.pools.get(name) if self.state is not None else None

    def epoch(self) -> int:
        """The coherence epoch before a call is sent."""
        return self.state.epoch if self.state is not None else 0

    def keep_source(self, name: str, response: pb.GetEgressSourceResponse, epoch: int) -> None:
        """Cache an answer (or hold it until the hello) if nothing made it doubtful in flight."""
        if self.state is not None:
            self.state.keep_source(
                name, response.source, response.revision, response.produced_at, epoch
            )

    def keep_pool(
        self, name: str, response: pb.GetEgressPoolResponse, epoch: int, sent_at: int
    ) -> None:
        """Cache a pool answer (or hold it until the hello), as keep_source;
        learn the suspensions among its entries (`sent_at`: Suspensions.epoch
        when the call was sent)."""
        if response.suspensions:
            self.suspensions.add(response.suspensions, sent_at)
        if self.state is not None:
            self.state.keep_pool(
                name, response.pool, response.revision, response.produced_at, epoch
            )

    def stale_source(self, name: str, error: ResolverError) -> EgressSource:
        """A failed call for a source: under stale_if_error its expired entry
        instead of an UNAVAILABLE error; else the error (and an expired entry
        that cannot be served is removed)."""
        if self.state is None:
            raise error
        return self._stale(name, error, self.state.sources)

    def stale_pool(self, name: str, error: ResolverError) -> EgressPool:
        """A failed call for a pool: as stale_source."""
        if self.state is None:
            raise error
        return self._stale(name, error, self.state.pools)

    def _stale(self, name: str, error: ResolverError, cache: DefinitionCache[M]) -> M:
        if error.code != grpc.StatusCode.UNAVAILABLE:
            cache.discard_expired(name)
            raise error
        stale = cache.serve_stale(name)
        if stale is None:
            raise error
        self.stale_served += 1
        _log.warning(
            "egress-resolver unreachable; serving an expired definition (stale_if_error)",
            extra={"egress_name": name, "stale_served": self.stale_served, "error": error.message},
        )
        return stale

    def select(self, pool: EgressPool) -> str:
        """The next source of `pool` by kumod's weighted round robin."""
        selector = self._selectors.get(pool.name)
        if selector is None or not selector.same_definition(pool):
            selector = self._selectors[pool.name] = PoolSelector(pool)
        try:
            return selector.next(self.suspensions.names())
        except NoSourcesError as err:
            raise ResolverError(
                grpc.StatusCode.FAILED_PRECONDITION, str(err), NO_SOURCES, pool.name
            ) from None
        except AllSuspendedError:
            raise self.suspensions.pool_error(pool) from None

    def connect_deadline(self, given: float | None) -> tuple[float, float]:
        """The whole timeout of one connect, and its deadline on the monotonic clock."""
        total = given or self.options.connect_timeout
        return total, time.monotonic() + total

    def lookup_timeout(self, deadline: float) -> float:
        """The timeout of the `get` a connect by name makes: within the deadline."""
        return max(0.001, min(self.options.timeout, deadline - time.monotonic()))

    def report_timeout(self, deadline: float) -> float:
        """The timeout of connect's report: what is left of the deadline, but at
        least REPORT_FLOOR (a failure that used the whole deadline is reported too)."""
        return max(REPORT_FLOOR, deadline - time.monotonic())

    def prepare(self, source: EgressSource, to: str) -> tuple[Prepared, str]:
        """Step 1 (suspended: SOURCE_SUSPENDED) and steps 2-3; and the EHLO name.
        A failure found here (a unix-path proxy, an address that does not parse)
        is raised as its ResolverError and not reported: no connection was tried."""
        refused = self.suspensions.source_error(source.name)
        if refused is not None:
            raise refused
        try:
            return prepare(source, to), ehlo_name(source)
        except ConnectFailedError as failure:
            raise failure.error() from None

    def report_request(
        self, name: str, cls: pb.FailureClass.ValueType | int | str, address: str, message: str
    ) -> pb.ReportSourceFailureRequest:
        """A ReportSourceFailure request (the class checked)."""
        return pb.ReportSourceFailureRequest(
            name=name, failure_class=failure_class(cls), address=address, message=message
        )

    def reported(
        self, response: pb.ReportSourceFailureResponse, sent_at: int
    ) -> pb.SourceSuspension | None:
        """Apply a report's answer: the suspension in force after it, if any."""
        if not response.HasField("suspension") or not response.suspension.name:
            return None
        self.suspensions.add([response.suspension], sent_at)
        return response.suspension

    def report_failed(self, failure: ConnectFailedError, err: Exception) -> None:
        """A report connect made could not be sent: logged, otherwise ignored."""
        _log.debug(
            "egress-resolver: reporting a connect failure failed",
            extra={"egress_name": failure.source, "error": str(err)},
        )

    def stats(self, watching: bool) -> dict[str, object]:
        """RPCs sent, cached entries and whether the stream is connected."""
        entries = len(self.state.sources) + len(self.state.pools) if self.state else 0
        return {"rpcs": self.rpcs, "entries": entries, "watching": watching}


class ResolverBase:
    """What Resolver and AsyncResolver share: their options (given in code, else
    from EGRESS_CLIENT_* variables, else the defaults), channel, stub and Core."""

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float | None = None,
        cache: bool | None = None,
        max_entries: int | None = None,
        stale_if_error: float | None = None,
        keepalive_interval: float | None = None,
        connect_timeout: float | None = None,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        options = Options.resolve(
            target=target,
            timeout=timeout,
            cache=cache,
            max_entries=max_entries,
            stale_if_error=stale_if_error,
            keepalive_interval=keepalive_interval,
            connect_timeout=connect_timeout,
        )
        self._open(options.target, credentials, options.channel_options())
        self._core = Core(options, clock, wall_clock)
        self._start()

    def _open(
        self,
        target: str,
        credentials: grpc.ChannelCredentials | None,
        channel_options: list[tuple[str, int]],
    ) -> None:
        """Open the channel and make the stub."""
        raise NotImplementedError

    def _start(self) -> None:
        """After the core is built (the watcher, when the cache is on)."""

    @property
    def options(self) -> Options:
        """The options in force (given, or from the environment, or defaults)."""
        return self._core.options

    @property
    def stale_served(self) -> int:
        """How many expired entries stale_if_error served."""
        return self._core.stale_served

    def cached_names(self) -> list[str]:
        """The names of the cached sources, least to most recently used
        (expired entries still held included); empty with the cache off."""
        return self._core.cached_names()

    def suspended(self) -> list[pb.SourceSuspension]:
        """The suspensions this client knows, by name (the ones in force on its clock)."""
        return self._core.suspensions.active()
