"""ExplainEgressSource: where an answer comes from, for operators.

It answers what GetEgressSource would (resolving on a miss), plus whether the
answer was cached, its age, how long it stays, the policy generation, the
revision and time the policy produced it, and the source's suspension in
force, if any.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration

from egress_resolver.definitions.codec import EncodedSource
from egress_resolver.definitions.errors import ResolveError
from egress_resolver.runtime.policy_runner import PolicyRunner
from egress_resolver.serving.cache import DefinitionCache
from egress_resolver.serving.service import ResolverService, wait_budget
from kumo.egress.v1 import resolver_service_pb2 as pb


def _duration(seconds: float) -> Duration:
    duration = Duration()
    duration.FromNanoseconds(max(0, round(seconds * 1e9)))
    return duration


class Explainer:
    """Serves ExplainEgressSource next to the resolver service."""

    def __init__(
        self,
        service: ResolverService,
        cache: DefinitionCache[EncodedSource],
        runner: PolicyRunner,
        policy: str,
    ) -> None:
        self._service = service
        self._cache = cache
        self._runner = runner
        self._policy = policy

    async def explain(
        self, request: pb.ExplainEgressSourceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        """The answer for `request.name` and where it came from."""
        response = pb.ExplainEgressSourceResponse(
            name=request.name,
            policy=self._policy,
            policy_generation=self._runner.generation,
            revision=self._runner.revision,
        )
        entry = self._cache.peek(request.name)
        if entry is not None:
            value, age, ttl_left = entry
            response.cache_hit = True
            response.age.CopyFrom(_duration(age))
            response.ttl_left.CopyFrom(_duration(ttl_left))
        else:
            try:
                value = await self._service.resolve(request.name, wait_budget(context))
            except ResolveError as err:
                value = err
            stored = self._cache.peek(request.name)
            if stored is not None:
                response.ttl_left.CopyFrom(_duration(stored[2]))
        if isinstance(value, ResolveError):
            response.error.CopyFrom(value.to_status())
        else:
            answer = value.decode()  # the cache keeps bytes only
            response.source.CopyFrom(answer.source)
            response.revision = answer.revision
            if answer.HasField("produced_at"):
                response.produced_at.CopyFrom(answer.produced_at)
        suspension = self._service.health.get(request.name)
        if suspension is not None:
            response.suspension.CopyFrom(suspension.message())
        return response.SerializeToString()

    def method_handlers(self) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
        """The ExplainEgressSource handler (response pre-serialized)."""
        return {
            "ExplainEgressSource": grpc.unary_unary_rpc_method_handler(
                self.explain, request_deserializer=pb.ExplainEgressSourceRequest.FromString
            )
        }
