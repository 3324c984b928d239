"""`kumo.dns.lookup_mx`'s query: kumod's MX settings, concurrency limit and negative cache.

`set_mx_timeout`, `set_mx_negative_cache_ttl` and `set_mx_concurrency_limit`
set `timeout`, `negative_ttl` and `limit`. At most `limit` MX queries run at
once (the semaphore is made by the first query); a failed query of the default
resolver is remembered for `negative_ttl` seconds and raised again meanwhile.
"""

from __future__ import annotations

import asyncio
from typing import Any

import dns.name

from egress_resolver.kumo_api import dns_lookups
from egress_resolver.kumo_api.dns_resolvers import MX, Clock, DnsError, Resolver


class MxLookups:
    """The MX queries of one loaded policy's `kumo.dns`."""

    def __init__(self) -> None:
        self.timeout = 5.0
        self.negative_ttl = 300.0
        self.limit = 128
        self._semaphore: asyncio.Semaphore | None = None
        self._failures: dict[tuple[Any, ...], tuple[float, BaseException]] = {}

    def time_limit(self, target: Resolver) -> float:
        """The lookup's deadline: the MX timeout, or the resolver's lifetime when shorter."""
        return min(self.timeout, target.lifetime) if target.lifetime else self.timeout

    async def lookup(
        self, target: Resolver, qname: dns.name.Name, port: int | None, clock: Clock, remember: bool
    ) -> dict[str, Any]:
        """The mail exchanger of `qname`; `remember`: cache failures (the default resolver)."""
        key = (qname, port)
        if remember and key in self._failures:
            until, remembered = self._failures[key]
            if clock() < until:
                raise remembered
            del self._failures[key]
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(max(self.limit, 1))
        try:
            async with self._semaphore:
                answer = await target.resolve(qname, MX)
            return dns_lookups.mail_exchanger(qname, port, answer)
        except DnsError as err:
            failure: BaseException = DnsError(
                f"DNS: failed to query DNS for {qname} (MX): {err}", timeout=err.timeout
            )
        except dns_lookups.NxDomainError as err:
            failure = err
        if remember:
            self._failures[key] = (clock() + self.negative_ttl, failure)
        raise failure
