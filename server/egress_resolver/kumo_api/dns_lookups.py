"""What `kumo.dns`'s lookups compute from answers: kumod's address literals,
lookup strategies, MailExchanger tables (by_pref, hosts, site_name) and RBL
names (crates/dns-resolver, crates/mailexchanger)."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import dns.name
import dns.rdatatype

from egress_resolver.kumo_api.dns_resolvers import (
    AAAA,
    MX,
    A,
    Answer,
    DnsError,
    Resolver,
    absolute,
    ip_addresses,
    reverse_ip,
)

STRATEGIES = ("Ipv4Only", "Ipv6Only", "Ipv4AndIpv6", "Ipv6ThenIpv4", "Ipv4ThenIpv6")
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class NxDomainError(Exception):
    """lookup_mx of a name that does not exist (an answer, not a DNS failure)."""


def strategy_types(strategy: str) -> str:
    """The record types a strategy may ask for, as the error message names them."""
    return {"Ipv4Only": "A", "Ipv6Only": "AAAA"}.get(strategy, "A, AAAA")


def address_literal(name: str) -> list[str] | None:
    """kumod's literal forms: `[1.2.3.4]`, `[IPv6:::1]`, or a bare IP address."""
    if not name.startswith("["):
        try:
            return [str(ipaddress.ip_address(name))]
        except ValueError:
            return None
    if not name.endswith("]"):
        raise ValueError(f"domain_name `{name}` is a malformed literal domain with no trailing `]`")
    literal = name.lower()[1:-1]
    if literal.startswith("ipv6:"):
        try:
            return [str(ipaddress.IPv6Address(literal[5:]))]
        except ValueError:
            raise ValueError(
                f"invalid ipv6 address: `{literal[5:]}`: invalid IPv6 address syntax"
            ) from None
    try:
        return [str(ipaddress.ip_address(literal))]
    except ValueError:
        raise ValueError(f"invalid address: `{literal}`: invalid IP address syntax") from None


async def lookup_addr(resolver: Resolver, name: dns.name.Name, strategy: str) -> list[str]:
    """kumod's ip_lookup: A and/or AAAA as the strategy says; an error only when no address."""

    async def family(rdtype: Any) -> tuple[list[str], DnsError | None]:
        try:
            return ip_addresses(await resolver.resolve(name, rdtype)), None
        except DnsError as err:
            tagged = DnsError(f"{dns.rdatatype.to_text(rdtype)}: {err}", timeout=err.timeout)
            return [], tagged

    if strategy == "Ipv4AndIpv6":
        results = list(await asyncio.gather(family(A), family(AAAA)))
    elif strategy in ("Ipv4Only", "Ipv6Only"):
        results = [await family(A if strategy == "Ipv4Only" else AAAA)]
    else:
        first, second = (A, AAAA) if strategy == "Ipv4ThenIpv6" else (AAAA, A)
        results = [await family(first)]
        if not results[0][0]:
            results.append(await family(second))
        if strategy == "Ipv6ThenIpv4":
            results.reverse()  # kumod lists v4 before v6 whatever it asked first
    addrs = [addr for found, _ in results for addr in found]
    errors = [err for _, err in results if err is not None]
    if not addrs and errors:
        raise errors[0]
    return addrs


def parse_rbl_address(text: str) -> IpAddress:
    """An IP address, or a socket address (`IP:PORT`, `[IPv6]:PORT`) whose IP is used."""
    candidates = [text]
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit():
        candidates.append(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
    for candidate in candidates:
        try:
            return ipaddress.ip_address(candidate)
        except ValueError:
            continue
    raise ValueError(f"{text} is not a valid IpAddr or SocketAddr")


def rbl_name(ip: IpAddress, base: str) -> str:
    return f"{reverse_ip(ip)}.{base}."


async def rbl_lookup(resolver: Resolver, name: dns.name.Name) -> dict[str, str]:
    """kumod's rbl_lookup: the first address of the name, and its TXT joined (if any)."""
    found = await resolver.resolve_ip(name)
    if not found:
        return {}
    result = {"ip": found[0]}
    try:
        answer = await resolver.resolve(name, dns.rdatatype.TXT)
    except DnsError:
        return result
    result["txt"] = "".join(txt_strings(answer))
    return result


def txt_strings(answer: Answer) -> list[str]:
    """Each TXT record's strings joined, decoded as UTF-8 (invalid bytes replaced)."""
    return [
        b"".join(r.strings).decode("utf-8", errors="replace")  # type: ignore[attr-defined]
        for r in answer.records
        if r.rdtype == dns.rdatatype.TXT
    ]


def classify_domain(domain: str) -> tuple[dns.name.Name, int | None] | str:
    """kumod's DomainClassification: (name, port) to resolve, or a literal address's text."""
    name, port = domain, None
    label, sep, maybe_port = domain.rpartition(":")
    if sep and ":" not in label and maybe_port.isdigit() and int(maybe_port) < 65536:
        name, port = label, int(maybe_port)
    if name.startswith("["):
        literal = address_literal(name)
        assert literal is not None
        address = literal[0]
        if port is None:
            return address
        return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    return absolute(name), port


def literal_mx(domain: str, address: str) -> dict[str, Any]:
    return {
        "domain_name": domain, "hosts": [address], "site_name": address,
        "by_pref": {1: [address]}, "is_domain_literal": True, "is_secure": False,
        "is_mx": False, "mta_sts": "None",
    }  # fmt: skip


def mail_exchanger(name: dns.name.Name, port: int | None, answer: Answer) -> dict[str, Any]:
    """kumod's MailExchanger table from the MX answer (no MX: the name itself, pref 1)."""
    by_pref: dict[int, list[str]] = {}
    for record in answer.records:
        if record.rdtype == MX:
            host = record.exchange.to_text().lower()  # type: ignore[attr-defined]
            by_pref.setdefault(record.preference, []).append(host)  # type: ignore[attr-defined]
    is_mx = bool(by_pref)
    if not is_mx:
        if answer.nxdomain:
            raise NxDomainError("NXDOMAIN")
        by_pref = {1: [name.to_text().lower()]}
    suffix = f":{port}" if port is not None else ""
    by_pref = {pref: [h + suffix for h in sorted(by_pref[pref])] for pref in sorted(by_pref)}
    hosts = [host for pref in by_pref for host in by_pref[pref]]
    return {
        "domain_name": name.to_text().lower(), "hosts": hosts, "site_name": factor_names(hosts),
        "by_pref": by_pref, "is_domain_literal": False, "is_secure": answer.secure,
        "is_mx": is_mx, "mta_sts": "None",
    }  # fmt: skip


def factor_names(names: list[str]) -> str:
    """kumod's site name: the hosts' labels position by position (from the right),
    alternatives in `(a|b)`, a position some names lack marked `?`."""
    split: list[list[str]] = []
    for text in names:
        label, sep, port = text.rpartition(":")
        host, suffix = (label, f":{port}") if sep and port.isdigit() else (text, "")
        try:
            name = absolute(host)
        except ValueError:
            continue
        fields = [part.decode("ascii", "replace").lower() for part in name.labels[:-1]]
        if fields and suffix:
            fields[-1] += suffix
        split.append(list(reversed(fields)))
    width = max((len(f) for f in split), default=0)
    elements: list[list[str]] = []
    for fields in split:
        for i, field in enumerate(fields + ["?"] * (width - len(fields))):
            if i == len(elements):
                elements.append([field])
            elif field not in elements[i]:
                elements[i].append(field)
    result = []
    for element in elements:
        kept = [e for e in element if e != "?"]
        text = kept[0] if len(kept) == 1 else f"({'|'.join(kept)})"
        result.append(text + ("?" if "?" in element else ""))
    return ".".join(reversed(result))
