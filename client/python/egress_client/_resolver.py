"""Resolver and AsyncResolver: thin typed wrappers over the generated stub.

`credentials=grpc.ssl_channel_credentials(...)` connects over TLS (mutual TLS
when it carries a client certificate). With `cache=True` a client keeps each
definition for its ttl, coalesces concurrent misses for one name into one
call, and follows WatchInvalidations to drop what the server reports as stale.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType

import grpc

from egress_client._cache import SourceCache
from egress_client._errors import ResolverError
from egress_client._watch import TaskWatcher, ThreadWatcher
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc
from kumo.egress.v1.egress_source_pb2 import EgressSource

DEFAULT_TIMEOUT = 2.0
"""Seconds a call may take unless the caller says otherwise (a miss runs Lua)."""

BatchResult = EgressSource | ResolverError
Clock = Callable[[], float]


def _batch_results(response: pb.BatchGetEgressSourcesResponse) -> list[BatchResult]:
    return [
        result.source
        if result.WhichOneof("result") == "source"
        else ResolverError.from_status(result.error, result.name)
        for result in response.results
    ]


def _waited_too_long(name: str) -> ResolverError:
    return ResolverError(
        grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed waiting for a shared lookup", None, name
    )


class Resolver:
    """Blocking client: `Resolver("127.0.0.1:50051").get("ip-1")`."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        cache: bool = False,
        clock: Clock = time.monotonic,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self._channel = (
            grpc.secure_channel(target, credentials)
            if credentials
            else grpc.insecure_channel(target)
        )
        self._stub = pb_grpc.EgressResolverServiceStub(self._channel)
        self.timeout = timeout
        self.cache = SourceCache(clock) if cache else None
        self._pending: dict[str, concurrent.futures.Future[EgressSource]] = {}
        self._lock = threading.Lock()
        self._watcher = ThreadWatcher(self._stub, self.cache) if self.cache is not None else None

    def get(self, name: str, *, timeout: float | None = None) -> EgressSource:
        """The egress source `name`; raises ResolverError."""
        if self.cache is None:
            return self._fetch(name, timeout)
        return self.cache.get(name) or self._get_shared(name, self.cache, timeout)

    def _get_shared(self, name: str, cache: SourceCache, timeout: float | None) -> EgressSource:
        with self._lock:
            future = self._pending.get(name)
            owner = future is None
            if future is None:
                future = self._pending[name] = concurrent.futures.Future()
        if not owner:
            try:
                return future.result(timeout or self.timeout)
            except concurrent.futures.TimeoutError:
                raise _waited_too_long(name) from None
        try:
            epoch, sent_at = cache.epoch, cache.clock()
            source = self._fetch(name, timeout)
            cache.put(name, source, sent_at, epoch)
            future.set_result(source)
            return source
        except BaseException as err:
            future.set_exception(err)
            raise
        finally:
            with self._lock:
                del self._pending[name]

    def _fetch(self, name: str, timeout: float | None) -> EgressSource:
        try:
            response = self._stub.GetEgressSource(
                pb.GetEgressSourceRequest(name=name), timeout=timeout or self.timeout
            )
        except grpc.RpcError as err:
            raise ResolverError.from_rpc_error(err, name) from None
        return response.source

    def get_many(self, names: Iterable[str], *, timeout: float | None = None) -> list[BatchResult]:
        """One result per name, in order: an EgressSource or a ResolverError (never cached)."""
        try:
            response = self._stub.BatchGetEgressSources(
                pb.BatchGetEgressSourcesRequest(names=list(names)),
                timeout=timeout or self.timeout,
            )
        except grpc.RpcError as err:
            raise ResolverError.from_rpc_error(err) from None
        return _batch_results(response)

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


class AsyncResolver:
    """asyncio client: `await AsyncResolver("unix:/run/egress.sock").get("ip-1")`."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        cache: bool = False,
        clock: Clock = time.monotonic,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self._channel = (
            grpc.aio.secure_channel(target, credentials)
            if credentials
            else grpc.aio.insecure_channel(target)
        )
        self._stub = pb_grpc.EgressResolverServiceStub(self._channel)
        self.timeout = timeout
        self.cache = SourceCache(clock) if cache else None
        self._pending: dict[str, asyncio.Future[EgressSource]] = {}
        self._watcher: TaskWatcher | None = None

    async def get(self, name: str, *, timeout: float | None = None) -> EgressSource:
        """The egress source `name`; raises ResolverError."""
        if self.cache is None:
            return await self._fetch(name, timeout)
        hit = self.cache.get(name)
        if hit is not None:
            return hit
        if self._watcher is None:  # started here: it needs the running loop
            self._watcher = TaskWatcher(lambda: self._stub, self.cache)
        return await self._get_shared(name, self.cache, timeout)

    async def _get_shared(
        self, name: str, cache: SourceCache, timeout: float | None
    ) -> EgressSource:
        future = self._pending.get(name)
        if future is not None:
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeout or self.timeout)
            except TimeoutError:
                raise _waited_too_long(name) from None
        future = self._pending[name] = asyncio.get_running_loop().create_future()
        try:
            epoch, sent_at = cache.epoch, cache.clock()
            source = await self._fetch(name, timeout)
            cache.put(name, source, sent_at, epoch)
            future.set_result(source)
            return source
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # retrieved: nobody may be waiting
            raise
        finally:
            del self._pending[name]

    async def _fetch(self, name: str, timeout: float | None) -> EgressSource:
        try:
            response = await self._stub.GetEgressSource(
                pb.GetEgressSourceRequest(name=name), timeout=timeout or self.timeout
            )
        except grpc.RpcError as err:
            raise ResolverError.from_rpc_error(err, name) from None
        return response.source

    async def get_many(
        self, names: Sequence[str], *, timeout: float | None = None
    ) -> list[BatchResult]:
        """One result per name, in order: an EgressSource or a ResolverError (never cached)."""
        try:
            response = await self._stub.BatchGetEgressSources(
                pb.BatchGetEgressSourcesRequest(names=list(names)),
                timeout=timeout or self.timeout,
            )
        except grpc.RpcError as err:
            raise ResolverError.from_rpc_error(err) from None
        return _batch_results(response)

    async def wait_until_watching(self, timeout: float) -> bool:
        """True once the invalidation stream is connected (after a first cached get)."""
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
