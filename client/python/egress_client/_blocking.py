"""Resolver: the blocking client, a typed wrapper over the generated stub with an opt-in cache.

`credentials=grpc.ssl_channel_credentials(...)` connects over TLS (mutual TLS
when it carries a client certificate). With `cache=True` a client keeps each
source and pool until `produced_at + ttl` (bounded, LRU), coalesces
concurrent misses for one name into one call, follows WatchInvalidations
(resuming across sidecar restarts), keeps serving cached entries while the
sidecar is unreachable and, with `stale_if_error`, expired ones for at most
that long. Options not given come from EGRESS_CLIENT_* variables (see
_options.py). `connect` connects through a source as kumod does (_connect.py,
_dial.py), reports the failures that count toward a host-wide suspension, and
`select` skips the suspended sources the client knows (_health.py).
AsyncResolver (_asyncio.py) is the same for asyncio.
"""

from __future__ import annotations

import concurrent.futures
import socket
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import NamedTuple, TypeVar

import grpc

from egress_client._connect import ConnectFailedError
from egress_client._core import BatchResult, ResolverBase, batch_results, waited_too_long
from egress_client._dial import dial
from egress_client._errors import ResolverError
from egress_client._watch import ThreadWatcher
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc
from kumo.egress.v1.egress_pool_pb2 import EgressPool
from kumo.egress.v1.egress_source_pb2 import EgressSource

T = TypeVar("T")


class Connection(NamedTuple):
    """What `Resolver.connect` returns: `sock, ehlo = resolver.connect(...)`."""

    sock: socket.socket
    """Connected (through the source's proxy, if any), blocking, ready for SMTP."""
    ehlo_name: str
    """The name to say in EHLO: the source's `ehlo_domain`, or else the host name."""


class Resolver(ResolverBase):
    """Blocking client: `Resolver("127.0.0.1:50051", cache=True).get("ip-1")`.

    Options: `target`, `timeout`, `cache`, `max_entries`, `stale_if_error`,
    `keepalive_interval`, `connect_timeout` (each else from its EGRESS_CLIENT_*
    variable), and `credentials`, `clock`, `wall_clock`."""

    def _open(
        self,
        target: str,
        credentials: grpc.ChannelCredentials | None,
        channel_options: list[tuple[str, int]],
    ) -> None:
        self._channel = (
            grpc.secure_channel(target, credentials, channel_options)
            if credentials
            else grpc.insecure_channel(target, channel_options)
        )
        self._stub = pb_grpc.EgressResolverServiceStub(self._channel)

    def _start(self) -> None:
        self._pending: dict[tuple[str, str], concurrent.futures.Future[object]] = {}
        self._lock = threading.Lock()
        state = self._core.state
        suspensions = self._core.suspensions
        self._watcher = ThreadWatcher(self._stub, state, suspensions) if state else None

    def get(self, name: str, *, timeout: float | None = None) -> EgressSource:
        """The egress source `name`; raises ResolverError."""
        hit = self._core.cached_source(name)
        if hit is not None:
            return hit
        if self._core.state is None:
            return self._get_source(name, timeout)
        return self._shared(
            ("source", name),
            lambda: self._get_source(name, timeout),
            timeout,
            lambda: self._core.cached_source(name),
        )

    def get_pool(self, name: str, *, timeout: float | None = None) -> EgressPool:
        """The egress pool `name`; raises ResolverError."""
        hit = self._core.cached_pool(name)
        if hit is not None:
            return hit
        if self._core.state is None:
            return self._get_pool(name, timeout)
        return self._shared(
            ("pool", name),
            lambda: self._get_pool(name, timeout),
            timeout,
            lambda: self._core.cached_pool(name),
        )

    def select(self, pool: str, *, timeout: float | None = None) -> str:
        """The next source name of `pool`, chosen as kumod chooses (weighted round robin)."""
        return self._core.select(self.get_pool(pool, timeout=timeout))

    def connect(
        self, source: EgressSource | str, to: str, *, timeout: float | None = None
    ) -> Connection:
        """Connect to `to` ("HOST:PORT") through `source` (or the source of that
        name) as kumod does (docs/clients/connect.md): bind, remote_port,
        HAProxy or SOCKS5, each candidate in turn, within one deadline
        (`timeout`, else `connect_timeout`). Raises ResolverError (UNAVAILABLE /
        SOURCE_SUSPENDED, SOURCE_UNPLUMBED, PROXY_UNHEALTHY, CONNECT_FAILED),
        after reporting the failures that count toward suspension; ValueError
        when `to` is not HOST:PORT."""
        total, deadline = self._core.connect_deadline(timeout)
        if isinstance(source, str):
            source = self.get(source, timeout=self._core.lookup_timeout(deadline))
        prepared, ehlo = self._core.prepare(source, to)
        try:
            return Connection(dial(prepared, deadline, total), ehlo)
        except ConnectFailedError as failure:
            if failure.report:
                try:
                    self.report_failure(
                        failure.source,
                        failure.failure_class,
                        failure.address,
                        failure.message,
                        timeout=self._core.report_timeout(deadline),
                    )
                except ResolverError as err:
                    self._core.report_failed(failure, err)
            raise failure.error() from None

    def report_failure(
        self,
        name: str,
        failure_class: int | str,
        address: str,
        message: str,
        *,
        timeout: float | None = None,
    ) -> pb.SourceSuspension | None:
        """Report a failed connect through `name` (for an MTA that connects by
        itself); the suspension in force after it, if any, which this client
        applies at once. `failure_class` is a FailureClass or its name
        ("PROXY_UNHEALTHY"). Raises ResolverError."""
        request = self._core.report_request(name, failure_class, address, message)
        sent_at = self._core.suspensions.epoch
        response = self._call(self._stub.ReportSourceFailure, request, timeout, name)
        return self._core.reported(response, sent_at)

    def wait_suspended(self, name: str, timeout: float) -> int | None:
        """The Unix time in ns at which this client learned that `name` is
        suspended, waiting up to `timeout` seconds for it; None if it is not."""
        return self._core.suspensions.wait(name, timeout)

    def _get_source(self, name: str, timeout: float | None) -> EgressSource:
        epoch = self._core.epoch()
        try:
            response = self._call(
                self._stub.GetEgressSource, pb.GetEgressSourceRequest(name=name), timeout, name
            )
        except ResolverError as err:
            return self._core.stale_source(name, err)
        self._core.keep_source(name, response, epoch)
        return response.source

    def _get_pool(self, name: str, timeout: float | None) -> EgressPool:
        epoch, sent_at = self._core.epoch(), self._core.suspensions.epoch
        try:
            response = self._call(
                self._stub.GetEgressPool, pb.GetEgressPoolRequest(name=name), timeout, name
            )
        except ResolverError as err:
            return self._core.stale_pool(name, err)
        self._core.keep_pool(name, response, epoch, sent_at)
        return response.pool

    def _call(
        self, method: Callable[..., T], request: object, timeout: float | None, name: str
    ) -> T:
        self._core.rpcs += 1
        try:
            return method(request, timeout=self._core.timeout(timeout))
        except grpc.RpcError as err:
            raise ResolverError.from_rpc_error(err, name) from None

    def _shared(
        self,
        key: tuple[str, str],
        fetch: Callable[[], T],
        timeout: float | None,
        cached: Callable[[], T | None],
    ) -> T:
        """Single-flight: the first caller of a missing `key` fetches, the
        others wait for its result; one that finds no call under way looks in
        the cache again (a call may have stored the answer meanwhile)."""
        with self._lock:
            future = self._pending.get(key)
            owner = future is None
            if future is None:
                hit = cached()
                if hit is not None:
                    return hit
                future = self._pending[key] = concurrent.futures.Future()
        if not owner:
            try:
                return future.result(self._core.timeout(timeout))  # type: ignore[return-value]
            except concurrent.futures.TimeoutError:
                raise waited_too_long(key[1]) from None
        try:
            value = fetch()
            future.set_result(value)
            return value
        except BaseException as err:
            future.set_exception(err)
            raise
        finally:
            with self._lock:
                del self._pending[key]

    def get_many(self, names: Iterable[str], *, timeout: float | None = None) -> list[BatchResult]:
        """One result per name, in order: an EgressSource or a ResolverError (never cached)."""
        request = pb.BatchGetEgressSourcesRequest(names=list(names))
        return batch_results(self._call(self._stub.BatchGetEgressSources, request, timeout, ""))

    def stats(self) -> dict[str, object]:
        """`rpcs` sent so far, cached `entries`, and whether the stream is `watching`."""
        watching = self._watcher is not None and self._watcher.connected.is_set()
        return self._core.stats(watching)

    def wait_until_watching(self, timeout: float) -> bool:
        """True once the invalidation stream is connected (cache=True only)."""
        return self._watcher is not None and self._watcher.connected.wait(timeout)

    def close(self) -> None:
        """Stop watching and close the channel."""
        if self._watcher is not None:
            self._watcher.stop()
        self._channel.close()

    def __enter__(self) -> Resolver:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
