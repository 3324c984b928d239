"""UpstreamResolver: kumod's Hickory, HickorySystemConfig and Unbound resolvers, on
dnspython's asyncio resolver.

It asks the configured name servers and caches each answer for its TTL
(negative answers for the SOA's, else 60 s), on a clock that tests replace
(dns_resolvers.set_clock).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import cachetools
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdatatype
import dns.resolver
from dns.asyncresolver import Resolver as AsyncResolver

from egress_resolver.kumo_api.dns_resolvers import (
    AAAA,
    DEFAULT_NEGATIVE_TTL,
    A,
    Answer,
    Clock,
    DnsError,
    Resolver,
    ip_addresses,
)


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """A dnspython resolver's parameters (hashable: equal configs share a resolver)."""

    servers: tuple[tuple[str, int], ...] | None
    """(address, port) pairs; None: the machine's, from /etc/resolv.conf."""
    tcp: bool = False
    source: str | None = None
    timeout: float = 5.0
    attempts: int = 2
    edns0: bool = True
    validate: bool = False
    recursion_desired: bool = True
    cache_size: int = 8192
    positive_ttl: tuple[float | None, float | None] = (None, None)
    negative_ttl: tuple[float | None, float | None] = (None, None)
    ip_strategy: str = "Ipv4thenIpv6"


class UpstreamResolver(Resolver):
    """Name servers asked with dnspython, answers cached for their TTL."""

    def __init__(self, config: UpstreamConfig, clock: Clock) -> None:
        self.config = config
        self.lifetime = config.timeout * max(config.attempts, 1)
        self._clock = clock
        self._cache: cachetools.TLRUCache[Any, Answer] = cachetools.TLRUCache(
            maxsize=max(config.cache_size, 1), ttu=lambda k, v, now: now + v.ttl, timer=clock
        )
        self._resolver: AsyncResolver | None = None

    def _dnspython(self) -> AsyncResolver:
        if self._resolver is None:
            config = self.config
            if config.servers is None:
                try:
                    resolver = AsyncResolver(configure=True)
                except dns.exception.DNSException as err:
                    raise DnsError(f"no name servers: {err}") from None
            else:
                resolver = AsyncResolver(configure=False)
                resolver.nameservers = [
                    dns.nameserver.Do53Nameserver(host, port) for host, port in config.servers
                ]
            resolver.timeout = config.timeout
            resolver.lifetime = self.lifetime + 1.0  # the IoRequest's timeout comes first
            resolver.use_edns(0 if config.edns0 or config.validate else -1, 0, 1232)
            flags = dns.flags.RD if config.recursion_desired else 0
            resolver.flags = flags | (dns.flags.AD if config.validate else 0)
            if config.validate:
                resolver.use_edns(0, dns.flags.DO, 1232)
            self._resolver = resolver
        return self._resolver

    async def resolve(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer:
        key = (name, rdtype)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        answer = await self._ask(name, rdtype)
        self._cache[key] = answer
        return answer

    async def _ask(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer:
        config = self.config
        try:
            result = await self._dnspython().resolve(
                name,
                rdtype,
                tcp=config.tcp,
                source=config.source,
                raise_on_no_answer=False,
                search=False,
            )
        except dns.resolver.NXDOMAIN as err:
            responses = list(err.responses().values())  # type: ignore[no-untyped-call]
            ttl = _negative_ttl(responses[0] if responses else None)
            return Answer((), nxdomain=True, ttl=self._clamp(ttl, config.negative_ttl))
        except dns.resolver.NoNameservers as err:
            raise DnsError(_server_errors(err)) from None
        except dns.exception.Timeout:
            raise DnsError(f"no answer within {self.lifetime:g}s", timeout=True) from None
        except (dns.exception.DNSException, OSError) as err:
            raise DnsError(str(err) or type(err).__name__) from None
        secure = config.validate and bool(result.response.flags & dns.flags.AD)
        if result.rrset is None:
            ttl = self._clamp(_negative_ttl(result.response), config.negative_ttl)
            return Answer((), secure=secure, ttl=ttl)
        ttl = float(result.chaining_result.minimum_ttl)
        return Answer(tuple(result.rrset), secure=secure, ttl=self._clamp(ttl, config.positive_ttl))

    @staticmethod
    def _clamp(ttl: float, bounds: tuple[float | None, float | None]) -> float:
        low, high = bounds
        if low is not None:
            ttl = max(ttl, low)
        if high is not None:
            ttl = min(ttl, high)
        return ttl

    async def resolve_ip(self, name: dns.name.Name) -> list[str]:
        strategy = self.config.ip_strategy
        first, second = (AAAA, A) if strategy.startswith("Ipv6") else (A, AAAA)
        if strategy.endswith("Only"):
            return ip_addresses(await self.resolve(name, first))
        if "And" in strategy:
            both = await asyncio.gather(self.resolve(name, first), self.resolve(name, second))
            return ip_addresses(both[0]) + ip_addresses(both[1])
        found = ip_addresses(await self.resolve(name, first))
        return found or ip_addresses(await self.resolve(name, second))


def _negative_ttl(response: dns.message.Message | None) -> float:
    for rrset in response.authority if response is not None else ():
        if rrset.rdtype == dns.rdatatype.SOA:
            return float(min(rrset.ttl, rrset[0].minimum))
    return DEFAULT_NEGATIVE_TTL


def _server_errors(err: dns.resolver.NoNameservers) -> str:
    texts = []
    for server, tcp, port, problem, _response in err.kwargs.get("errors", []):
        where = str(server).removeprefix("Do53:")  # dnspython names it Do53:ADDRESS@PORT
        address, at, number = where.rpartition("@")
        if at:
            where = f"[{address}]:{number}" if ":" in address else f"{address}:{number}"
        elif port is not None:
            where = f"{where}:{port}"
        texts.append(f"{problem} from {where}{' over TCP' if tcp else ''}")
    return "; ".join(texts) or "no name server answered"
