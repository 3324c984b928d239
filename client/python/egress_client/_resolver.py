"""Resolver and AsyncResolver: thin typed wrappers over the generated stub."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import TracebackType

import grpc

from egress_client._errors import ResolverError
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc
from kumo.egress.v1.egress_source_pb2 import EgressSource

DEFAULT_TIMEOUT = 2.0
"""Seconds a call may take unless the caller says otherwise (a miss runs Lua)."""

BatchResult = EgressSource | ResolverError


def _batch_results(response: pb.BatchGetEgressSourcesResponse) -> list[BatchResult]:
    return [
        result.source
        if result.WhichOneof("result") == "source"
        else ResolverError.from_status(result.error, result.name)
        for result in response.results
    ]


class Resolver:
    """Blocking client: `Resolver("127.0.0.1:50051").get("ip-1")`."""

    def __init__(self, target: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._channel = grpc.insecure_channel(target)
        self._stub = pb_grpc.EgressResolverServiceStub(self._channel)
        self.timeout = timeout

    def get(self, name: str, *, timeout: float | None = None) -> EgressSource:
        """The egress source `name`; raises ResolverError."""
        try:
            response = self._stub.GetEgressSource(
                pb.GetEgressSourceRequest(name=name), timeout=timeout or self.timeout
            )
        except grpc.RpcError as err:
            raise ResolverError.from_rpc_error(err, name) from None
        return response.source

    def get_many(self, names: Iterable[str], *, timeout: float | None = None) -> list[BatchResult]:
        """One result per name, in order: an EgressSource or a ResolverError."""
        try:
            response = self._stub.BatchGetEgressSources(
                pb.BatchGetEgressSourcesRequest(names=list(names)),
                timeout=timeout or self.timeout,
            )
        except grpc.RpcError as err:
            raise ResolverError.from_rpc_error(err) from None
        return _batch_results(response)

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> Resolver:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncResolver:
    """asyncio client: `await AsyncResolver("unix:/run/egress.sock").get("ip-1")`."""

    def __init__(self, target: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = pb_grpc.EgressResolverServiceStub(self._channel)
        self.timeout = timeout

    async def get(self, name: str, *, timeout: float | None = None) -> EgressSource:
        """The egress source `name`; raises ResolverError."""
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
        """One result per name, in order: an EgressSource or a ResolverError."""
        try:
            response = await self._stub.BatchGetEgressSources(
                pb.BatchGetEgressSourcesRequest(names=list(names)),
                timeout=timeout or self.timeout,
            )
        except grpc.RpcError as err:
            raise ResolverError.from_rpc_error(err) from None
        return _batch_results(response)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def __aenter__(self) -> AsyncResolver:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
