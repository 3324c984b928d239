"""Python client for egress-resolver.

from egress_client import Resolver
with Resolver("127.0.0.1:50051", cache=True) as resolver:
    source = resolver.get(resolver.select("pool-1"))   # kumo.egress.v1.EgressSource
"""

from egress_client._asyncio import AsyncResolver
from egress_client._blocking import Resolver
from egress_client._core import NO_SOURCES, BatchResult
from egress_client._errors import ResolverError
from egress_client._options import DEFAULT_TIMEOUT, OptionError, Options

__all__ = [
    "DEFAULT_TIMEOUT",
    "NO_SOURCES",
    "AsyncResolver",
    "BatchResult",
    "OptionError",
    "Options",
    "Resolver",
    "ResolverError",
]
