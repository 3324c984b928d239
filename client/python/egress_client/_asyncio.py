"""AsyncResolver: the asyncio client; the same options, cache and coherence as
Resolver (_blocking.py), every method a coroutine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, NamedTuple, TypeVar

import grpc

from egress_client._adial import dial
from egress_client._connect import ConnectFailedError
from egress_client._core import BatchResult, ResolverBase, batch_results, waited_too_long
from egress_client._errors import ResolverError
from egress_client._watch import TaskWatcher
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc
from kumo.egress.v1.egress_pool_pb2 import EgressPool
from kumo.egress.v1.egress_source_pb2 import EgressSource

T = TypeVar("T")
WAIT_STEP = 0.001
"""How often `wait_suspended` looks (the stream applies on this loop)."""


class StreamConnection(NamedTuple):
    """What `AsyncResolver.connect` returns: `reader, writer, ehlo = await r.connect(...)`."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    """Connected (through the source's proxy, if any), ready for SMTP."""
    ehlo_name: str
    """The name to say in EHLO: the source's `ehlo_domain`, or else the host name."""


class AsyncResolver(ResolverBase):
    """asyncio client: `await AsyncResolver("unix:/run/egress.sock", cache=True).get("ip-1")`.

    The same options as Resolver. With the cache on, the invalidation stream
    starts when the resolver is created inside a running event loop (made
    outside one, at its first call: the stream needs the loop)."""

    def _open(
        self,
        target: str,
        credentials: grpc.ChannelCredentials | None,
        channel_options: list[tuple[str, int]],
    ) -> None:
        self._channel = (
            grpc.aio.secure_channel(target, credentials, channel_options)
            if credentials
            else grpc.aio.insecure_channel(target, channel_options)
        )
        self._stub = pb_grpc.EgressResolverServiceStub(self._channel)

    def _start(self) -> None:
        self._pending: dict[tuple[str, str], asyncio.Future[Any]] = {}
        self._watcher: TaskWatcher | None = None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the first call starts the watcher
        self._watch()

    def _watch(self) -> None:
        if self._watcher is None and self._core.state is not None:  # needs the running loop
            self._watcher = TaskWatcher(self._stub, self._core.state, self._core.suspensions)

    async def get(self, name: str, *, timeout: float | None = None) -> EgressSource:
        """The egress source `name`; raises ResolverError."""
        hit = self._core.cached_source(name)
        if hit is not None:
            return hit
        if self._core.state is None:
            return await self._get_source(name, timeout)
        self._watch()
        return await self._shared(
            ("source", name), lambda: self._get_source(name, timeout), timeout
        )

    async def get_pool(self, name: str, *, timeout: float | None = None) -> EgressPool:
        """The egress pool `name`; raises ResolverError."""
        hit = self._core.cached_pool(name)
        if hit is not None:
            return hit
        if self._core.state is None:
            return await self._get_pool(name, timeout)
        self._watch()
        return await self._shared(("pool", name), lambda: self._get_pool(name, timeout), timeout)

    async def select(self, pool: str, *, timeout: float | None = None) -> str:
        """The next source name of `pool`, chosen as kumod chooses (weighted round robin)."""
        return self._core.select(await self.get_pool(pool, timeout=timeout))

    async def connect(
        self, source: EgressSource | str, to: str, *, timeout: float | None = None
    ) -> StreamConnection:
        """Resolver.connect for asyncio: the connection as asyncio streams."""
        total, deadline = self._core.connect_deadline(timeout)
        if isinstance(source, str):
            source = await self.get(source, timeout=self._core.lookup_timeout(deadline))
        prepared, ehlo = self._core.prepare(source, to)
        try:
            reader, writer = await dial(prepared, deadline, total)
        except ConnectFailedError as failure:
            if failure.report:
                try:
                    await self.report_failure(
                        failure.source,
                        failure.failure_class,
                        failure.address,
                        failure.message,
                        timeout=self._core.report_timeout(deadline),
                    )
                except ResolverError as err:
                    self._core.report_failed(failure, err)
            raise failure.error() from None
        return StreamConnection(reader, writer, ehlo)

    async def report_failure(
        self,
        name: str,
        failure_class: int | str,
        address: str,
        message: str,
        *,
        timeout: float | None = None,
    ) -> pb.SourceSuspension | None:
        """Resolver.report_failure for asyncio."""
        request = self._core.report_request(name, failure_class, address, message)
        sent_at = self._core.suspensions.epoch
        response = await self._call(self._stub.ReportSourceFailure, request, timeout, name)
        return self._core.reported(response, sent_at)

    async def wait_suspended(self, name: str, timeout: float) -> int | None:
        """Resolver.wait_suspended for asyncio (looks every millisecond)."""
        self._watch()
        end = time.monotonic() + timeout
        while (learned := self._core.suspensions.learned_ns(name)) is None:
            if time.monotonic() >= end:
                return None
            await asyncio.sleep(WAIT_STEP)
        return learned

    async def _get_source(self, name: str, timeout: float | None) -> EgressSource:
        epoch = self._core.epoch()
        try:
            response = await self._call(
                self._stub.GetEgressSource, pb.GetEgressSourceRequest(name=name), timeout, name
            )
        except ResolverError as err:
            return self._core.stale_source(name, err)
        self._core.keep_source(name, response, epoch)
        return response.source

    async def _get_pool(self, name: str, timeout: float | None) -> EgressPool:
        epoch, sent_at = self._core.epoch(), self._core.suspensions.epoch
        try:
            response = await self._call(
                self._stub.GetEgressPool, pb.GetEgressPoolRequest(name=name), timeout, name
            )
        except ResolverError as err:
            return self._core.stale_pool(name, err)
        self._core.keep_pool(name, response, epoch, sent_at)
        return response.pool

    async def _call(
        self, method: Callable[..., Awaitable[T]], request: object, timeout: float | None, name: str
    ) -> T:
        self._core.rpcs += 1
        try:
            return await method(request, timeout=self._core.timeout(timeout))
        except grpc.RpcError as err:
            raise ResolverError.from_rpc_error(err, name) from None

    async def _shared(
        self, key: tuple[str, str], fetch: Callable[[], Awaitable[T]], timeout: float | None
    ) -> T:
        future = self._pending.get(key)
        if future is not None:
            try:
                shared: T = await asyncio.wait_for(
                    asyncio.shield(future), self._core.timeout(timeout)
                )
            except TimeoutError:
                raise waited_too_long(key[1]) from None
            return shared
        future = self._pending[key] = asyncio.get_running_loop().create_future()
        try:
            value = await fetch()
            future.set_result(value)
            return value
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # retrieved: nobody may be waiting
            raise
        finally:
            del self._pending[key]

    async def get_many(
        self, names: Sequence[str], *, timeout: float | None = None
    ) -> list[BatchResult]:
        """One result per name, in order: an EgressSource or a ResolverError (never cached)."""
        request = pb.BatchGetEgressSourcesRequest(names=list(names))
        response = await self._call(self._stub.BatchGetEgressSources, request, timeout, "")
        return batch_results(response)

    def stats(self) -> dict[str, object]:
        """`rpcs` sent so far, cached `entries`, and whether the stream is `watching`."""
        watching = self._watcher is not None and self._watcher.connected.is_set()
        return self._core.stats(watching)

    async def wait_until_watching(self, timeout: float) -> bool:
        """True once the invalidation stream is connected (cache=True only)."""
        self._watch()
        if self._watcher is None:
            return False
        try:
            await asyncio.wait_for(self._watcher.connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop watching and close the channel."""
        if self._watcher is not None:
            await self._watcher.stop()
        await self._channel.close()

    async def __aenter__(self) -> AsyncResolver:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
