"""The resolvers behind `kumo.dns`: kumod's Test, Hickory and Aggregate kinds, on dnspython.

Every resolver answers `resolve(name, type)` with an `Answer` (records, or
NXDOMAIN / no data, which are answers) or raises `DnsError` (SERVFAIL,
REFUSED, an unreachable server, a timeout), as kumod's resolvers return a
DnsError. `resolve_ptr` and `resolve_ip` are kumod's shortcuts, used by
`lookup_ptr` and `rbl_lookup`; an Aggregate treats them differently from
`resolve` (the first non-empty list wins there, the first answer that is
not NXDOMAIN here), as kumod's AggregateResolver does.

- `TestResolver` answers from zone files parsed by dnspython, in memory:
  the zone whose origin is the closest enclosing one answers (a name it
  lacks is "no data"); no zone: NXDOMAIN; names listed in `servfail` fail.
- `UpstreamResolver` (dns_upstream.py) asks name servers (Hickory /
  HickorySystemConfig / Unbound configs).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.zone

from egress_resolver.kumo_api.io import IoContext

A, AAAA, MX, PTR, TXT = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.MX,
                         dns.rdatatype.PTR, dns.rdatatype.TXT)  # fmt: skip
DEFAULT_NEGATIVE_TTL = 60.0
Clock = Callable[[], float]
_CLOCK_KEY = ("kumo.dns", "clock")


class DnsError(Exception):
    """The DNS could not answer: SERVFAIL, REFUSED, unreachable, or a timeout."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


@dataclass(frozen=True, slots=True)
class Answer:
    """kumod's Answer: the records of one name and type."""

    records: tuple[dns.rdata.Rdata, ...]
    nxdomain: bool = False
    secure: bool = False
    ttl: float = DEFAULT_NEGATIVE_TTL


def ip_addresses(answer: Answer) -> list[str]:
    return [r.address for r in answer.records if r.rdtype in (A, AAAA)]  # type: ignore[attr-defined]


def reverse_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """kumod's reverse_ip: the address's labels, last first (nibbles for IPv6)."""
    return ip.reverse_pointer.rsplit(".", 2)[0]


def ptr_host(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return ip.reverse_pointer


def set_clock(io: IoContext, clock: Clock) -> None:
    """Make the DNS caches of policies that use `io` read `clock` (tests)."""
    io.shared(_CLOCK_KEY, lambda: clock, _nothing)


def get_clock(io: IoContext) -> Clock:
    clock: Clock = io.shared(_CLOCK_KEY, lambda: time.monotonic, _nothing)
    return clock


async def _nothing(value: object) -> None:
    return None


class Resolver:
    """What every kind of resolver offers."""

    lifetime: float = 0.0
    """The longest one `resolve` may take, in seconds (0: it answers at once)."""

    async def resolve(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer:
        raise NotImplementedError

    async def resolve_ptr(self, name: dns.name.Name) -> list[str]:
        answer = await self.resolve(name, PTR)
        return [r.target.to_text() for r in answer.records if r.rdtype == PTR]  # type: ignore[attr-defined]

    async def resolve_ip(self, name: dns.name.Name) -> list[str]:
        return ip_addresses(await self.resolve(name, A)) + ip_addresses(
            await self.resolve(name, AAAA)
        )


@dataclass(frozen=True, slots=True)
class _Zone:
    zone: dns.zone.Zone
    secure: bool


class TestResolver(Resolver):
    """kumod's Test resolver: zone files in memory."""

    def __init__(self, zones: Sequence[tuple[str, bool]], servfail: Sequence[str] = ()) -> None:
        self._zones: dict[dns.name.Name, _Zone] = {}
        for text, secure in zones:
            try:
                zone = dns.zone.from_text(text, origin=None, relativize=False, check_origin=False)
            except (dns.exception.DNSException, KeyError, ValueError) as err:
                raise ValueError(f"invalid zone: {err}") from None
            assert zone.origin is not None
            self._zones[zone.origin] = _Zone(zone, secure)
        self._servfail = {absolute(n) for n in servfail}

    async def resolve(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer:
        return self._get(name, rdtype, 0)

    def _get(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, depth: int) -> Answer:
        if name in self._servfail:
            raise DnsError("SERVFAIL")
        authority = name
        while authority not in self._zones:
            if authority == dns.name.root:
                return Answer((), nxdomain=True)
            authority = authority.parent()
        zone = self._zones[authority]
        found = zone.zone.get_rdataset(name, rdtype)
        if found is None and rdtype != dns.rdatatype.CNAME and depth < 8:
            alias = zone.zone.get_rdataset(name, dns.rdatatype.CNAME)
            if alias is not None:
                target = self._get(alias[0].target, rdtype, depth + 1)
                return Answer(target.records, target.nxdomain, target.secure and zone.secure)
        return Answer(tuple(found or ()), secure=zone.secure)


class AggregateResolver(Resolver):
    """kumod's Aggregate: each resolver in turn, the first useful answer wins."""

    def __init__(self, resolvers: Sequence[Resolver]) -> None:
        self._resolvers = list(resolvers)
        self.lifetime = sum(r.lifetime for r in self._resolvers)

    async def resolve(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer:
        errors: list[DnsError] = []
        nxdomain: Answer | None = None
        for resolver in self._resolvers:
            try:
                answer = await resolver.resolve(name, rdtype)
            except DnsError as err:
                errors.append(err)
                continue
            if not answer.nxdomain:
                return answer
            nxdomain = answer
        if errors:
            raise errors[-1]
        return nxdomain or Answer((), nxdomain=True)

    async def resolve_ptr(self, name: dns.name.Name) -> list[str]:
        return await self._first_list(lambda r: r.resolve_ptr(name))

    async def resolve_ip(self, name: dns.name.Name) -> list[str]:
        return await self._first_list(lambda r: r.resolve_ip(name))

    async def _first_list(self, ask: Callable[[Resolver], Any]) -> list[str]:
        errors: list[DnsError] = []
        for resolver in self._resolvers:
            try:
                found: list[str] = await ask(resolver)
            except DnsError as err:
                errors.append(err)
                continue
            if found:
                return found
        if errors:
            raise errors[-1]
        return []


def absolute(name: str) -> dns.name.Name:
    """kumod's fully_qualify: the name, lowercased, as absolute."""
    try:
        return dns.name.from_text(name.rstrip(".") + "." if name not in ("", ".") else ".")
    except (dns.exception.DNSException, UnicodeError) as err:
        raise ValueError(f"invalid name {name}: {err}") from None
