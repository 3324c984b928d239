"""The EgressResolverService: request checks, cache, and the wire format.

Handlers return bytes: a hit sends the response serialized when the entry was
stored, so it costs one dict lookup and no protobuf work. Every failure is a
ResolveError, sent as its gRPC code with a google.rpc.ErrorInfo detail.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc

from egress_resolver.definitions.codec import EncodedPool, EncodedSource
from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.definitions.pools import pool_source_failure
from egress_resolver.definitions.validation import check_name
from egress_resolver.runtime.lua_events import POOL_EVENT
from egress_resolver.serving.cache import DefinitionCache
from egress_resolver.serving.cache_values import Started
from egress_resolver.serving.invalidations import ClientState, Invalidation, InvalidationHub
from egress_resolver.serving.source_health import SourceHealth
from kumo.egress.v1 import resolver_service_pb2 as pb

SERVICE_NAME = "kumo.egress.v1.EgressResolverService"
MAX_BATCH_NAMES = 1000
Invalidator = Callable[[Sequence[str], Sequence[str], bool], tuple[Invalidation, int]]
"""Drops (source names, pool names, or all): the event announced and how many entries went."""


ANSWER_MARGIN_SECONDS = 0.01
ANSWER_MARGIN_SHARE = 0.02


def wait_budget(context: grpc.aio.ServicerContext[Any, Any]) -> float | None:
    """How long a call may wait for a load: until a little before the caller's
    deadline, so that the DEADLINE_EXCEEDED answer (with its reason) reaches the
    caller before the caller's own timer ends the call without one.

    The sidecar's deadline is later than the caller's: the request spends time
    in transit, and gRPC rounds the grpc-timeout header up to its unit (10 ms
    from 1 s, 100 ms from 10 s, 1 s from 100 s: up to 1 % of the timeout).
    Waiting until it, the caller's timer won about half the races and the caller
    saw a bare DEADLINE_EXCEEDED. So the wait ends 10 ms plus 2 % of the time
    left early (at most half of it)."""
    remaining = context.time_remaining()
    if remaining is None:
        return None
    margin = min(ANSWER_MARGIN_SECONDS + ANSWER_MARGIN_SHARE * remaining, remaining / 2)
    return remaining - margin


async def check_pool_sources(
    pool: EncodedPool, resolve: Callable[[str], Awaitable[object]]
) -> EncodedPool:
    """`pool`, once every one of its sources resolves (as kumod requires), or
    the pool's INVALID_POOL_SOURCE error naming the first that does not."""
    definition = pool.definition()
    for entry in definition.entries:
        try:
            await resolve(entry.name)
        except ResolveError as err:
            raise pool_source_failure(definition.name, err) from None
    return pool


class ResolverService:
    """Serves sources and pools from their caches, loading misses through the policy."""

    def __init__(
        self,
        cache: DefinitionCache[EncodedSource],
        load_source: Callable[[str], Started[EncodedSource]],
        invalidations: InvalidationHub,
        *,
        pool_cache: DefinitionCache[EncodedPool],
        load_pool: Callable[[str], Awaitable[EncodedPool]],
        invalidate: Invalidator,
        allow_invalidate: bool = True,
        health: SourceHealth | None = None,
    ) -> None:
        self._cache = cache
        self._load_source = load_source
        self._invalidations = invalidations
        self._pool_cache = pool_cache
        self._load_pool_definition = load_pool
        self._invalidate = invalidate
        self._allow_invalidate = allow_invalidate
        self.health = SourceHealth() if health is None else health

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

    async def resolve_for_policy(self, event: str, name: str) -> object:
        """kumo.invoke_get_egress_* from a handler: through the caches, as a request."""
        if event == POOL_EVENT:
            return (await self.resolve_pool(name, None)).definition()
        return (await self.resolve(name, None)).definition()

    async def _load_pool(self, name: str) -> EncodedPool:
        # As kumod: a pool is only good if every one of its sources resolves,
        # through the same path (and cache) as GetEgressSource.
        pool = await self._load_pool_definition(name)
        return await check_pool_sources(pool, lambda source: self.resolve(source, None))

    async def get_egress_pool(
        self, request: pb.GetEgressPoolRequest, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        """GetEgressPool: the response bytes (with the suspensions in force among
        its entries), or an aborted call with the error."""
        try:
            pool = await self.resolve_pool(request.name, wait_budget(context))
        except ResolveError as err:
            await _abort(context, err)
            raise  # unreachable: abort raises
        if not self.health:
            return pool.response
        held = self.health.in_force(entry.name for entry in pool.definition().entries)
        if not held:
            return pool.response
        # Serialized messages concatenate: the repeated field follows the cached bytes.
        extra = pb.GetEgressPoolResponse(suspensions=[s.message() for s in held])
        return pool.response + extra.SerializeToString()

    async def get_egress_source(
        self, request: pb.GetEgressSourceRequest, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        """GetEgressSource: the response bytes, or an aborted call with the error."""
        try:
            # The hit path, inline: the busiest line of the sidecar.
            cached = self._cache.lookup(request.name)
            if cached is not None:
                return cached.response
            return (await self._load(request.name, wait_budget(context))).response
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
        timeout = wait_budget(context)
        outcomes = await asyncio.gather(
            *(self.resolve(name, timeout) for name in names), return_exceptions=True
        )
        response = pb.BatchGetEgressSourcesResponse()
        for name, outcome in zip(names, outcomes, strict=True):
            if isinstance(outcome, EncodedSource):
                answer = outcome.decode()  # the cache keeps bytes only
                response.results.add(
                    name=name,
                    source=answer.source,
                    revision=answer.revision,
                    produced_at=answer.produced_at if answer.HasField("produced_at") else None,
                )
            elif isinstance(outcome, ResolveError):
                response.results.add(
                    name=name, error=outcome.to_status(), revision=self._invalidations.revision
                )
            else:
                raise outcome
        return response.SerializeToString()

    async def invalidate(
        self, request: pb.InvalidateRequest, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        """Invalidate: drop the names (or all) and announce them."""
        try:
            if not self._allow_invalidate:
                raise ResolveError(
                    Reason.INVALIDATE_DISABLED,
                    "Invalidate is turned off on this sidecar (--allow-invalidate false)",
                )
            names, pools = list(request.names), list(request.pool_names)
            if request.all == bool(names or pools):
                raise ResolveError(
                    Reason.INVALID_REQUEST,
                    "give source or pool names, or all, and not both"
                    if request.all
                    else "nothing to invalidate: give source or pool names, or all",
                )
            if len(names) + len(pools) > MAX_BATCH_NAMES:
                raise ResolveError(
                    Reason.TOO_MANY_NAMES,
                    f"{len(names) + len(pools)} names given; the limit is {MAX_BATCH_NAMES}",
                )
            for name in (*names, *pools):
                check_name(name)
        except ResolveError as err:
            await _abort(context, err)
        event, dropped = self._invalidate(names, pools, request.all)
        return pb.InvalidateResponse(sequence=event.sequence, dropped=dropped).SerializeToString()

    async def watch_invalidations(
        self,
        request: pb.WatchInvalidationsRequest,
        context: grpc.aio.ServicerContext[bytes, bytes],
    ) -> AsyncIterator[bytes]:
        """WatchInvalidations: a hello for the client's state (and every
        suspension in force), then every invalidation and suspension change."""
        client = ClientState(
            request.revision, request.instance, request.sequence, request.previous_stream_ended
        )
        instance = self._invalidations.instance
        async for event in self._invalidations.subscribe(client):
            yield pb.WatchInvalidationsResponse(
                generation=event.generation,
                all=event.all,
                names=sorted(event.names),
                pool_names=sorted(event.pools),
                revision=event.revision,
                instance=instance,
                sequence=event.sequence,
                suspended=[suspension.message() for suspension in event.suspended],
                resumed=sorted(event.resumed),
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
            "Invalidate": grpc.unary_unary_rpc_method_handler(
                self.invalidate, request_deserializer=pb.InvalidateRequest.FromString
            ),
            "WatchInvalidations": grpc.unary_stream_rpc_method_handler(
                self.watch_invalidations,
                request_deserializer=pb.WatchInvalidationsRequest.FromString,
            ),
        }


async def _abort(context: grpc.aio.ServicerContext[bytes, bytes], err: ResolveError) -> None:
    await context.abort(err.code, err.message, err.trailing_metadata())
