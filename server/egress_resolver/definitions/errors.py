"""The catalogue of stable error reasons and their gRPC status codes.

Every failure a client can see is a `ResolveError`: a reason from this
catalogue (sent as `google.rpc.ErrorInfo.reason`, usable as a metric label),
the gRPC code that reason always maps to, and a message for people.

A few reasons are never sent by the sidecar: the clients produce them, with
the same code, when `connect` through a source or `select` from a pool fails
(docs/clients/connect.md). They are catalogued here so that every reason and
its code live in one place.
"""

from __future__ import annotations

import enum

import grpc
from google.protobuf import any_pb2
from google.rpc.error_details_pb2 import ErrorInfo
from google.rpc.status_pb2 import Status

STATUS_DETAILS_KEY = "grpc-status-details-bin"
ERROR_DOMAIN = "egress-resolver.kumo"
"""`google.rpc.ErrorInfo.domain` of every error the resolver returns."""


class Reason(enum.StrEnum):
    """Stable UPPER_SNAKE reasons; each belongs to exactly one gRPC code."""

    EMPTY_NAME = "EMPTY_NAME"
    NAME_TOO_LONG = "NAME_TOO_LONG"
    NAME_HAS_CONTROL_CHARACTERS = "NAME_HAS_CONTROL_CHARACTERS"
    TOO_MANY_NAMES = "TOO_MANY_NAMES"
    INVALID_REQUEST = "INVALID_REQUEST"
    SOURCE_NOT_FOUND = "SOURCE_NOT_FOUND"
    POOL_NOT_FOUND = "POOL_NOT_FOUND"
    HANDLER_ERROR = "HANDLER_ERROR"
    INVALID_RETURN_TYPE = "INVALID_RETURN_TYPE"
    INVALID_DEFINITION = "INVALID_DEFINITION"
    NO_HANDLER = "NO_HANDLER"
    INVALID_POOL_SOURCE = "INVALID_POOL_SOURCE"
    HANDLER_TIMEOUT = "HANDLER_TIMEOUT"
    DATA_SOURCE_ERROR = "DATA_SOURCE_ERROR"
    DATA_SOURCE_TIMEOUT = "DATA_SOURCE_TIMEOUT"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    TOO_MANY_PENDING_MISSES = "TOO_MANY_PENDING_MISSES"
    LUA_MEMORY_LIMIT = "LUA_MEMORY_LIMIT"
    POLICY_NOT_LOADED = "POLICY_NOT_LOADED"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    INVALIDATE_DISABLED = "INVALIDATE_DISABLED"
    # Produced by the clients, never sent by the sidecar:
    SOURCE_UNPLUMBED = "SOURCE_UNPLUMBED"
    PROXY_UNHEALTHY = "PROXY_UNHEALTHY"
    CONNECT_FAILED = "CONNECT_FAILED"
    SOURCE_SUSPENDED = "SOURCE_SUSPENDED"
    POOL_SUSPENDED = "POOL_SUSPENDED"

    @property
    def code(self) -> grpc.StatusCode:
        """The gRPC status code this reason is always sent with."""
        return _CODES[self]

    @property
    def cacheable(self) -> bool:
        """Whether an answer with this reason is kept for `--negative-ttl`.

        Only answers that come from the policy itself are cached; overload,
        caller deadlines and availability are about this moment, not the name.
        """
        return self in _CACHEABLE

    @property
    def transient(self) -> bool:
        """A data source failed (down, slow, locked): cached only for
        `--transient-error-ttl`, so the name answers again soon after the
        data source is back."""
        return self in _TRANSIENT


_CODES: dict[Reason, grpc.StatusCode] = {
    Reason.EMPTY_NAME: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.NAME_TOO_LONG: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.NAME_HAS_CONTROL_CHARACTERS: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.TOO_MANY_NAMES: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.INVALID_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.SOURCE_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.POOL_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.HANDLER_ERROR: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.INVALID_RETURN_TYPE: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.INVALID_DEFINITION: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.NO_HANDLER: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.INVALID_POOL_SOURCE: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.HANDLER_TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    Reason.DATA_SOURCE_ERROR: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.DATA_SOURCE_TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    Reason.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    Reason.TOO_MANY_PENDING_MISSES: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.LUA_MEMORY_LIMIT: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.POLICY_NOT_LOADED: grpc.StatusCode.UNAVAILABLE,
    Reason.SHUTTING_DOWN: grpc.StatusCode.UNAVAILABLE,
    Reason.INVALIDATE_DISABLED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.SOURCE_UNPLUMBED: grpc.StatusCode.UNAVAILABLE,
    Reason.PROXY_UNHEALTHY: grpc.StatusCode.UNAVAILABLE,
    Reason.CONNECT_FAILED: grpc.StatusCode.UNAVAILABLE,
    Reason.SOURCE_SUSPENDED: grpc.StatusCode.UNAVAILABLE,
    Reason.POOL_SUSPENDED: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
CLIENT_REASONS = frozenset(
    {
        Reason.SOURCE_UNPLUMBED,
        Reason.PROXY_UNHEALTHY,
        Reason.CONNECT_FAILED,
        Reason.SOURCE_SUSPENDED,
        Reason.POOL_SUSPENDED,
    }
)
"""Reasons only the clients produce (connect, select); the sidecar never sends them."""

_CACHEABLE = frozenset(
    {
        Reason.SOURCE_NOT_FOUND,
        Reason.POOL_NOT_FOUND,
        Reason.HANDLER_ERROR,
        Reason.INVALID_RETURN_TYPE,
        Reason.INVALID_DEFINITION,
        Reason.NO_HANDLER,
        Reason.INVALID_POOL_SOURCE,
        Reason.HANDLER_TIMEOUT,
        Reason.DATA_SOURCE_ERROR,
        Reason.DATA_SOURCE_TIMEOUT,
    }
)
_TRANSIENT = frozenset({Reason.DATA_SOURCE_ERROR, Reason.DATA_SOURCE_TIMEOUT})


class ResolveError(Exception):
    """A failure to resolve one name, as the client will see it."""

    def __init__(self, reason: Reason, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.name = name
        self._metadata: tuple[tuple[str, bytes], ...] | None = None

    @property
    def code(self) -> grpc.StatusCode:
        """The gRPC status code of this error."""
        return self.reason.code

    def to_status(self) -> Status:
        """This error as a `google.rpc.Status` with an ErrorInfo detail."""
        info = ErrorInfo(reason=self.reason.value, domain=ERROR_DOMAIN)
        if self.name is not None:
            info.metadata["name"] = self.name
        detail = any_pb2.Any()
        detail.Pack(info)
        return Status(code=self.code.value[0], message=self.message, details=[detail])

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        """The `grpc-status-details-bin` trailer, computed once per error."""
        if self._metadata is None:
            self._metadata = ((STATUS_DETAILS_KEY, self.to_status().SerializeToString()),)
        return self._metadata

    def __repr__(self) -> str:
        return f"ResolveError({self.reason.value}, {self.message!r})"


def handler_failure(
    reason: Reason, name: str, what: str, event: str = "get_egress_source"
) -> ResolveError:
    """A FAILED_PRECONDITION-style error worded as kumod words it: `<event> '<name>': <what>`."""
    return ResolveError(reason, f"{event} '{name}': {what}", name)
