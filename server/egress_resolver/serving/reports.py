"""ReportSourceFailure: a client's connect through a source failed.

The request is checked as GetEgressSource checks a name, and its failure
class must be one of the three. The source is resolved through the normal
path (a cache hit, or the policy), because its definition holds the rule for
the class: `suspend_when_unplumbed` for SOURCE_UNPLUMBED,
`suspend_when_proxy_unhealthy` for PROXY_UNHEALTHY, none for CONNECT_FAILED
(the destination failed, not the source: counted, never suspends). A name
that does not resolve gets that name's error. SourceHealth (source_health.py) then
decides; the answer carries the suspension in force for the source.
"""

from __future__ import annotations

from typing import Any

import grpc

from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.definitions.validation import check_name
from egress_resolver.serving.service import ResolverService, wait_budget
from egress_resolver.serving.source_health import SourceHealth
from kumo.egress.v1 import resolver_service_pb2 as pb

MAX_MESSAGE_BYTES = 1024
"""Of the client's message, at most this much is kept (UTF-8, cut at a character)."""
MAX_ADDRESS_BYTES = 256
"""Of the address, at most this much is kept (an `[IPv6]:port` is under 64)."""
RULES: dict[int, str | None] = {
    pb.FAILURE_CLASS_SOURCE_UNPLUMBED: "suspend_when_unplumbed",
    pb.FAILURE_CLASS_PROXY_UNHEALTHY: "suspend_when_proxy_unhealthy",
    pb.FAILURE_CLASS_CONNECT_FAILED: None,
}
"""The source field whose rule decides, by failure class."""
_CLASSES = (
    "FAILURE_CLASS_SOURCE_UNPLUMBED, FAILURE_CLASS_PROXY_UNHEALTHY or FAILURE_CLASS_CONNECT_FAILED"
)


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of UTF-8, never inside a character."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit].decode(errors="ignore")


def failure_reason(address: str, message: str) -> str:
    """What a suspension says of the report that fired it: the message, led by
    the address when the message does not name it."""
    address = truncate(address, MAX_ADDRESS_BYTES)
    message = truncate(message, MAX_MESSAGE_BYTES)
    if not address or address in message:
        return message
    return f"{address}: {message}" if message else address


def check_failure_class(value: int) -> None:
    """Refuse UNSPECIFIED and numbers that are not a FailureClass (INVALID_REQUEST)."""
    if value == pb.FAILURE_CLASS_UNSPECIFIED:
        raise ResolveError(
            Reason.INVALID_REQUEST,
            f"give a failure_class: {_CLASSES} (FAILURE_CLASS_UNSPECIFIED is not a failure)",
        )
    if value not in RULES:
        raise ResolveError(
            Reason.INVALID_REQUEST, f"failure_class {value} is unknown; expected {_CLASSES}"
        )


class FailureReports:
    """Serves ReportSourceFailure next to the resolver service."""

    def __init__(self, service: ResolverService, health: SourceHealth) -> None:
        self._service = service
        self._health = health

    async def report(
        self, request: pb.ReportSourceFailureRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        """Count the failure, apply the source's rule; the suspension in force after it."""
        try:
            check_name(request.name)
            check_failure_class(request.failure_class)
            source = await self._service.resolve(request.name, wait_budget(context))
        except ResolveError as err:
            await context.abort(err.code, err.message, err.trailing_metadata())
            raise  # unreachable: abort raises
        field = RULES[request.failure_class]
        rule = None if field is None else getattr(source.definition(), field)
        suspension = self._health.report(
            request.name,
            request.failure_class,
            rule,
            failure_reason(request.address, request.message),
        )
        response = pb.ReportSourceFailureResponse(
            suspension=None if suspension is None else suspension.message()
        )
        return response.SerializeToString()

    def method_handlers(self) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
        """The ReportSourceFailure handler (response pre-serialized)."""
        return {
            "ReportSourceFailure": grpc.unary_unary_rpc_method_handler(
                self.report, request_deserializer=pb.ReportSourceFailureRequest.FromString
            )
        }
