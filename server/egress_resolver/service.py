"""The EgressResolverService: request checks, cache, and the wire format.

Handlers return bytes: a hit sends the response serialized when the entry was
stored, so it costs one dict lookup and no protobuf work. Every failure is a
ResolveError, sent as its gRPC code with a google.rpc.ErrorInfo detail.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from egress_resolver.cache import DefinitionCache
from egress_resolver.codec import EncodedPool, EncodedSource, encode_pool
from egress_resolver.errors import Reason, ResolveError
from egress_resolver.invalidations import InvalidationHub
from egress_resolver.pools import PoolDefinition, pool_source_failure
from egress_resolver.validation import check_name
from kumo.egress.v1 import resolver_service_pb2 as pb

SERVICE_NAME = "kumo.egress.v1.EgressResolverService"
MAX_BATCH_NAMES = 1000


class ResolverService:
    """Serves sources and pools from their caches, loading misses through the policy."""

    def __init__(
        self,
        cache: DefinitionCache[EncodedSource],
        load_source: Callable[[str], Awaitable[EncodedSource]],
        invalidations: InvalidationHub,
        *,
        pool_cache: DefinitionCache[EncodedPool],
        load_pool: Callable[[str], Awaitable[PoolDefinition]],
    ) -> None:
        self._cache = cache
        self._load_source = load_source
        self._invalidations = invalidations
        self._pool_cache = pool_cache
        self._load_pool_definition = load_pool

    async def resolve(self, name: str, timeout: float | None) -> EncodedSource:
        """The definition for `name`: a cache hit, or a (shared) load on a miss."""
        cached = self._cache.lookup(name)
        if cached is not None:
            return cached
        return await self._load(name, timeout)

    async def _load(self, name: str, timeout: float | None) -> EncodedSource:
        check_name(name)
        return await self._cache.load(name, self._load_source, timeout)

    async def resolve_pool(self, name: str, timeout: float | None) -> EncodedPool:
        """The pool `name`: a cache hit, or a (shared) load of it and its sources."""
        cached = self._pool_cache.lookup(name)
        if cached is not None:
            return cached
        check_name(name)
        return await self._pool_cache.load(name, self._load_pool, timeout)

    async def _load_pool(self, name: str) -> EncodedPool:
        # As kumod: a pool is only good if every one of its sources resolves,
        # through the same path (and cache) as GetEgressSource.
        definition = await self._load_pool_definition(name)
        for entry in definition.entries:
            try:
                await self.resolve(entry.name, None)
            except ResolveError as err:
                raise pool_source_failure(name, err) from None
        return encode_pool(definition)

    async def get_egress_pool(
        self, request: pb.GetEgressPoolRequest, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        """GetEgressPool: the response bytes, or an aborted call with the error."""
        try:
            return (await self.resolve_pool(request.name, context.time_remaining())).response
        except ResolveError as err:
            await _abort(context, err)
            raise  # unreachable: abort raises

    async def get_egress_source(
        self, request: pb.GetEgressSourceRequest, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        """GetEgressSource: the response bytes, or an aborted call with the error."""
        try:
            # The hit path, inline: the busiest line of the sidecar.
            cached = self._cache.lookup(request.name)
            if cached is not None:
                return cached.response
            return (await self._load(request.name, context.time_remaining())).response
        except ResolveError as err:
            await _abort(context, err)
            raise  # unreachable: abort raises

    async def batch_get_egress_sources(
        self,
        request: pb.BatchGetEgressSourcesRequest,
        context: grpc.aio.ServicerContext[bytes, bytes],
    ) -> bytes:
        """BatchGetEgressSources: one result per name, in order."""
        names = list(request.names)
        if len(names) > MAX_BATCH_NAMES:
            await _abort(
                context,
                ResolveError(
                    Reason.TOO_MANY_NAMES,
                    f"{len(names)} names requested; the limit is {MAX_BATCH_NAMES} per call",
                ),
            )
        timeout = context.time_remaining()
        outcomes = await asyncio.gather(
            *(self.resolve(name, timeout) for name in names), return_exceptions=True
        )
        response = pb.BatchGetEgressSourcesResponse()
        for name, outcome in zip(names, outcomes, strict=True):
            if isinstance(outcome, EncodedSource):
                response.results.add(name=name, source=outcome.message)
            elif isinstance(outcome, ResolveError):
                response.results.add(name=name, error=outcome.to_status())
            else:
                raise outcome
        return response.SerializeToString()

    async def watch_invalidations(
        self,
        request: pb.WatchInvalidationsRequest,
        context: grpc.aio.ServicerContext[bytes, bytes],
    ) -> AsyncIterator[bytes]:
        """WatchInvalidations: a hello with the generation, then every invalidation."""
        async for event in self._invalidations.subscribe():
            yield pb.WatchInvalidationsResponse(
                generation=event.generation, all=event.all, names=event.names
            ).SerializeToString()

    def method_handlers(self) -> dict[str, grpc.RpcMethodHandler[object, bytes]]:
        """gRPC method handlers; responses are pre-serialized bytes."""
        return {
            "GetEgressSource": grpc.unary_unary_rpc_method_handler(
                self.get_egress_source,
                request_deserializer=pb.GetEgressSourceRequest.FromString,
            ),
            "BatchGetEgressSources": grpc.unary_unary_rpc_method_handler(
                self.batch_get_egress_sources,
                request_deserializer=pb.BatchGetEgressSourcesRequest.FromString,
            ),
            "GetEgressPool": grpc.unary_unary_rpc_method_handler(
                self.get_egress_pool,
                request_deserializer=pb.GetEgressPoolRequest.FromString,
            ),
            "WatchInvalidations": grpc.unary_stream_rpc_method_handler(
                self.watch_invalidations,
                request_deserializer=pb.WatchInvalidationsRequest.FromString,
            ),
        }


async def _abort(context: grpc.aio.ServicerContext[bytes, bytes], err: ResolveError) -> None:
    await context.abort(err.code, err.message, err.trailing_metadata())
