"""Python client for egress-resolver.

from egress_client import Resolver
with Resolver("127.0.0.1:50051", cache=True) as resolver:
    source = resolver.get(resolver.select("pool-1"))   # kumo.egress.v1.EgressSource
    sock, ehlo = resolver.connect(source, "mx.example.com:25")  # as kumod connects
"""

from egress_client._asyncio import AsyncResolver, StreamConnection
from egress_client._blocking import Connection, Resolver
from egress_client._connect import CONNECT_FAILED, PROXY_UNHEALTHY, SOURCE_UNPLUMBED
from egress_client._core import NO_SOURCES, BatchResult
from egress_client._errors import ResolverError
from egress_client._health import POOL_SUSPENDED, SOURCE_SUSPENDED
from egress_client._options import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_TIMEOUT,
    OptionError,
    Options,
)

__all__ = [
    "CONNECT_FAILED",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "NO_SOURCES",
    "POOL_SUSPENDED",
    "PROXY_UNHEALTHY",
    "SOURCE_SUSPENDED",
    "SOURCE_UNPLUMBED",
    "AsyncResolver",
    "BatchResult",
    "Connection",
    "OptionError",
    "Options",
    "Resolver",
    "ResolverError",
    "StreamConnection",
]
