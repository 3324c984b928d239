"""Python client for egress-resolver.

from egress_client import Resolver
with Resolver("127.0.0.1:50051") as resolver:
    source = resolver.get("ip-1")   # kumo.egress.v1.EgressSource
"""

from egress_client._errors import ResolverError
from egress_client._resolver import DEFAULT_TIMEOUT, AsyncResolver, BatchResult, Resolver

__all__ = ["DEFAULT_TIMEOUT", "AsyncResolver", "BatchResult", "Resolver", "ResolverError"]
