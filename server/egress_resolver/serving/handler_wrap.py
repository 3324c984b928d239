"""Wrapping gRPC method handlers (for metrics, draining) without touching the service."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
from google.protobuf.message import DecodeError

from egress_resolver.definitions.errors import Reason, ResolveError

if TYPE_CHECKING:  # the stubs make RpcMethodHandler generic; the runtime class is not
    Handlers: TypeAlias = dict[str, grpc.RpcMethodHandler[Any, Any]]
else:
    Handlers = dict
Wrapper = Callable[[str, Any], Any]


def rewrap(
    handlers: Handlers, unary: Wrapper, stream: Wrapper, *, keep_deserializer: bool = True
) -> Handlers:
    """The same handlers with each behaviour replaced by `unary(method, fn)` or
    `stream(method, fn)`, keeping their serializers (and deserializers unless told)."""
    wrapped: Handlers = {}
    for method, handler in handlers.items():
        options = {
            "request_deserializer": handler.request_deserializer if keep_deserializer else None,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            wrapped[method] = grpc.unary_unary_rpc_method_handler(
                unary(method, handler.unary_unary), **options
            )
        elif handler.unary_stream is not None:
            wrapped[method] = grpc.unary_stream_rpc_method_handler(
                stream(method, handler.unary_stream), **options
            )
        else:
            wrapped[method] = handler
    return wrapped


def decode_in_handler(handlers: Handlers) -> Handlers:
    """Parse request bodies inside the handler, so that a body which is not the
    method's message gets INVALID_ARGUMENT (INVALID_REQUEST) instead of grpc's
    bare UNKNOWN."""
    parsers = {method: h.request_deserializer for method, h in handlers.items()}

    def parse(method: str, context: grpc.aio.ServicerContext[Any, Any], body: bytes) -> Any:
        parser = parsers[method]
        assert parser is not None
        try:
            return parser(body)
        except DecodeError as err:
            raise ResolveError(
                Reason.INVALID_REQUEST, f"the request body is not a valid {method} request: {err}"
            ) from None

    async def reject(context: grpc.aio.ServicerContext[Any, Any], err: ResolveError) -> None:
        await context.abort(err.code, err.message, err.trailing_metadata())

    def unary(method: str, call: Any) -> Any:
        async def decoded(body: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                request = parse(method, context, body)
            except ResolveError as err:
                await reject(context, err)
            return await call(request, context)

        return decoded

    def stream(method: str, call: Any) -> Any:
        async def decoded(body: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                request = parse(method, context, body)
            except ResolveError as err:
                await reject(context, err)
            async for message in call(request, context):
                yield message

        return decoded

    return rewrap(handlers, unary, stream, keep_deserializer=False)
