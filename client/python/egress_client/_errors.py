"""ResolverError: a failed resolution with its gRPC code and ErrorInfo reason."""

from __future__ import annotations

import grpc
from google.rpc.error_details_pb2 import ErrorInfo
from google.rpc.status_pb2 import Status

_DETAILS_KEY = "grpc-status-details-bin"
_CODES_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


class ResolverError(Exception):
    """Why a name did not resolve.

    `code` is the gRPC status code, `reason` the stable ErrorInfo reason
    (e.g. "HANDLER_ERROR"; None if the server sent none, as for transport
    errors), `message` the server's text and `name` the requested name.
    """

    def __init__(
        self, code: grpc.StatusCode, message: str, reason: str | None = None, name: str = ""
    ) -> None:
        super().__init__(f"{code.name}: {message}" + (f" [{reason}]" if reason else ""))
        self.code = code
        self.message = message
        self.reason = reason
        self.name = name

    @classmethod
    def from_status(cls, status: Status, name: str = "") -> ResolverError:
        """Build from a google.rpc.Status (as found in batch results)."""
        reason = None
        for detail in status.details:
            info = ErrorInfo()
            if detail.Unpack(info):
                reason = info.reason
                break
        code = _CODES_BY_VALUE.get(status.code, grpc.StatusCode.UNKNOWN)
        return cls(code, status.message, reason, name)

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError, name: str = "") -> ResolverError:
        """Build from the RpcError a sync or async stub raised."""
        call: grpc.Call = error  # type: ignore[assignment]
        for key, value in call.trailing_metadata() or ():
            if key == _DETAILS_KEY and isinstance(value, bytes):
                return cls.from_status(Status.FromString(value), name)
        return cls(call.code(), call.details() or "", None, name)
