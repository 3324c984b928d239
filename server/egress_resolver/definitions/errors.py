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
    POOL_HAS_NO_SOURCES = "POOL_HAS_NO_SOURCES"

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
    Reason.POOL_HAS_NO_SOURCES: grpc.StatusCode.FAILED_PRECONDITION,
}
CLIENT_REASONS = frozenset(
    {
        Reason.SOURCE_UNPLUMBED,
        Reason.PROXY_UNHEALTHY,
        Reason.CONNECT_FAILED,
        Reason.SOURCE_SUSPENDED,
        Reason.POOL_SUSPENDED,
        Reason.POOL_HAS_NO_SOURCES,
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

SITUATIONS: dict[Reason, str] = {
    Reason.EMPTY_NAME: "empty name",
    Reason.NAME_TOO_LONG: "name over 1 024 bytes (UTF-8)",
    Reason.NAME_HAS_CONTROL_CHARACTERS: "control characters in the name",
    Reason.TOO_MANY_NAMES: "more than 1 000 names in a batch",
    Reason.INVALID_REQUEST: (
        "a request body that is not the method's message; `Invalidate` with names and `all`, "
        "or with neither; `ReportSourceFailure` with `FAILURE_CLASS_UNSPECIFIED` or a number "
        "that is no class"
    ),
    Reason.SOURCE_NOT_FOUND: "the `get_egress_source` handler returned nil or nothing",
    Reason.POOL_NOT_FOUND: "the `get_egress_pool` handler returned nil or nothing",
    Reason.HANDLER_ERROR: "the handler raised an error, or a Lua runtime error",
    Reason.INVALID_RETURN_TYPE: "the handler returned something other than a definition",
    Reason.INVALID_DEFINITION: "`make_egress_source` or `make_egress_pool` refused the table",
    Reason.NO_HANDLER: "no `get_egress_pool` handler registered, for a pool",
    Reason.INVALID_POOL_SOURCE: "a pool names a source that does not resolve",
    Reason.HANDLER_TIMEOUT: "the handler ran past its time budget (`--handler-timeout`)",
    Reason.DATA_SOURCE_ERROR: (
        "a data source down, refusing, locked, answering garbage or 5xx, or over "
        "`--data-source-limit-mib`"
    ),
    Reason.DATA_SOURCE_TIMEOUT: "a data source past its own timeout",
    Reason.DEADLINE_EXCEEDED: (
        "the caller's deadline is passing while it waits (answered 10 ms + 2 % of the time "
        "left before it, so that the answer reaches the caller before its own timer ends the "
        "call; a batch still answers its other names)"
    ),
    Reason.TOO_MANY_PENDING_MISSES: "too many concurrent misses (`--max-pending-misses`)",
    Reason.LUA_MEMORY_LIMIT: "the Lua memory cap was hit (`--lua-memory-mib`)",
    Reason.POLICY_NOT_LOADED: (
        "starting, or no valid policy loaded: it failed to load, `init` or `validate_config` "
        "failed, or it registers no `get_egress_source` handler (an empty or half-written file)"
    ),
    Reason.SHUTTING_DOWN: "shutting down (after SIGTERM)",
    Reason.INVALIDATE_DISABLED: "`Invalidate` turned off (`--allow-invalidate false`)",
    Reason.SOURCE_UNPLUMBED: "client `connect`: binding the source's local address failed",
    Reason.PROXY_UNHEALTHY: (
        "client `connect`: the proxy could not be reached, its handshake failed, "
        "or it refused to bind"
    ),
    Reason.CONNECT_FAILED: "client `connect`: the destination could not be reached directly",
    Reason.SOURCE_SUSPENDED: ("client `connect` through a source the client knows to be suspended"),
    Reason.POOL_SUSPENDED: (
        "client `select`: every source of the pool (of weight above 0) is suspended"
    ),
    Reason.POOL_HAS_NO_SOURCES: "client `select`: the pool has no source of weight above 0",
}
"""When each reason is sent: the "situation" column of the reason table (docs/errors.md)."""


def reason_table() -> str:
    """The reason table of docs/errors.md, one row per reason (a test keeps the two equal)."""
    rows = ["| reason | status | situation | cached |", "|---|---|---|---|"]
    for reason in Reason:
        if reason in CLIENT_REASONS:
            cached = "— (raised by the clients)"
        elif reason.transient:
            cached = "`--transient-error-ttl`"
        else:
            cached = "`--negative-ttl`" if reason.cacheable else "no"
        rows.append(
            f"| `{reason.value}` | `{reason.code.name}` | {SITUATIONS[reason]} | {cached} |"
        )
    return "\n".join(rows) + "\n"


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
