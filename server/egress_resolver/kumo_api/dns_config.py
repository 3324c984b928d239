"""kumod's resolver configurations (crates/mod-dns-resolver/src/config.rs), checked as strictly.

`resolver_config` reads a KumoResolverConfig: `'HickorySystemConfig'`,
`{ Hickory = CONFIG }`, `{ Unbound = CONFIG }`, `{ Test = TEST }` or
`{ Aggregate = { ... } }`; `dns_config` a DnsResolverConfig (`name_servers`,
`domain`, `search`, `options`), whose unknown fields are errors, as kumod's
`deny_unknown_fields`; `test_config` the Test shapes (a list of zones, or
`{ zones = ..., servfail = ... }`; a zone is its text or `{ zone, secure }`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from egress_resolver.definitions.durations import NANOS_PER_SECOND, DurationError, parse_duration
from egress_resolver.kumo_api.dns_resolvers import (
    AggregateResolver,
    Resolver,
    TestResolver,
    absolute,
)
from egress_resolver.kumo_api.dns_upstream import UpstreamConfig

KINDS = ("Hickory", "HickorySystemConfig", "Unbound", "Test", "Aggregate")
_TOP = ("domain", "search", "name_servers", "options")
_OPTIONS: dict[str, str] = {
    "ndots": "int", "timeout": "duration", "attempts": "int", "edns0": "bool",
    "validate": "bool", "ip_strategy": "ip_strategy", "cache_size": "int",
    "use_hosts_file": "use_hosts_file", "positive_min_ttl": "duration",
    "negative_min_ttl": "duration", "positive_max_ttl": "duration",
    "negative_max_ttl": "duration", "num_concurrent_reqs": "int",
    "preserve_intermediates": "bool", "try_tcp_on_error": "bool",
    "server_ordering_strategy": "server_ordering_strategy", "recursion_desired": "bool",
    "case_randomization": "bool", "trust_anchor_file": "trust_anchor_file",
}  # fmt: skip
_UNBOUND_OPTIONS = ("validate", "trust_anchor_file", "use_hosts_file")
_ENUMS = {
    "ip_strategy": ("Ipv4Only", "Ipv6Only", "Ipv4AndIpv6", "Ipv6AndIpv4", "Ipv6thenIpv4",
                    "Ipv4thenIpv6"),
    "use_hosts_file": ("Always", "Auto", "Never"),
    "server_ordering_strategy": ("QueryStatistics", "RoundRobin", "UserProvidedOrder"),
    "protocol": ("udp", "tcp", "udp_then_tcp"),
}  # fmt: skip

MakeUpstream = Callable[[UpstreamConfig], Resolver]
"""Builds (or reuses) the resolver of an upstream config."""


def _expected(names: tuple[str, ...]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _table(value: object, what: str) -> dict[Any, Any]:
    if isinstance(value, list) and not value:
        return {}  # an empty Lua table
    if not isinstance(value, dict):
        raise ValueError(f"{what}: invalid type: {_kind(value)}, expected a table")
    return value


def _seq(value: object) -> object:
    """An empty Lua table (which arrives as an empty dict) is an empty list too."""
    return [] if isinstance(value, dict) and not value else value


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"number `{value}`"
    if isinstance(value, str):
        return f'string "{value}"'
    return "a list" if isinstance(value, list) else "a table" if value is not None else "nil"


def _unknown(table: dict[Any, Any], known: tuple[str, ...], what: str) -> None:
    for key in table:
        if key not in known:
            raise ValueError(f"{what}: unknown field `{key}`, expected one of {_expected(known)}")


def socket_addr(text: object, what: str) -> tuple[str, int]:
    """An `IP:PORT` (or `[IPv6]:PORT`) socket address, as Rust's SocketAddr parses it."""
    if isinstance(text, str):
        host, _, port = text.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            host = ""
        try:
            if port.isdigit() and int(port) < 65536:
                return str(ipaddress.ip_address(host)), int(port)
        except ValueError:
            pass
    raise ValueError(f"{what}: '{text}': invalid socket address syntax")


def server_address(text: str) -> tuple[str, int]:
    """A `--dns-servers` entry: `IP:PORT`, `[IPv6]:PORT`, or an IP address (port 53)."""
    try:
        return str(ipaddress.ip_address(text)), 53
    except ValueError:
        return socket_addr(text, "--dns-servers")


def _option(key: str, kind: str, value: object, what: str) -> object:
    where = f"{what}.options.{key}"
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if kind == "duration":
        try:
            return parse_duration(value) / NANOS_PER_SECOND
        except DurationError as err:
            raise ValueError(f"{where}: {err}") from None
    if kind in _ENUMS:
        if value in _ENUMS[kind]:
            return value
        raise ValueError(
            f"{where}: unknown variant `{value}`, expected one of {_expected(_ENUMS[kind])}"
        )
    if kind == "trust_anchor_file" and (
        isinstance(value, str) or (isinstance(value, dict) and set(value) == {"managed"})
    ):
        return value
    raise ValueError(f"{where}: invalid type: {_kind(value)}")


def dns_config(value: object, what: str, unbound: bool = False) -> UpstreamConfig:
    """A DnsResolverConfig as the parameters of a dnspython resolver."""
    table = _table(value, what)
    _unknown(table, _TOP, what)
    for key in ("domain",):
        if table.get(key) is not None:
            absolute(str(table[key]))
    search = _seq(table.get("search", []))
    if not isinstance(search, list) or not all(isinstance(s, str) for s in search):
        raise ValueError(f"{what}: search: expected a list of names")
    options = _table(table.get("options", {}), f"{what}.options")
    _unknown(options, tuple(_OPTIONS), f"{what}.options")
    opts = {key: _option(key, _OPTIONS[key], v, what) for key, v in options.items()}
    if unbound:
        for key in opts:
            if key not in _UNBOUND_OPTIONS:
                raise ValueError(
                    f"{what}: option not supported by the unbound backend: unknown field "
                    f"`{key}`, expected one of {_expected(_UNBOUND_OPTIONS)}"
                )
    servers, tcp, source = _name_servers(_seq(table.get("name_servers", [])), what)
    return UpstreamConfig(
        servers=tuple(servers) if servers or not unbound else None,
        tcp=tcp,
        source=source,
        timeout=float(opts.get("timeout", 5.0)),  # type: ignore[arg-type]
        attempts=int(opts.get("attempts", 2)),  # type: ignore[call-overload]
        edns0=bool(opts.get("edns0", True)),
        validate=bool(opts.get("validate", False)),
        recursion_desired=bool(opts.get("recursion_desired", True)),
        cache_size=int(opts.get("cache_size", 8192)),  # type: ignore[call-overload]
        positive_ttl=(opts.get("positive_min_ttl"), opts.get("positive_max_ttl")),  # type: ignore[arg-type]
        negative_ttl=(opts.get("negative_min_ttl"), opts.get("negative_max_ttl")),  # type: ignore[arg-type]
        ip_strategy=str(opts.get("ip_strategy", "Ipv4thenIpv6")),
    )


def _name_servers(value: object, what: str) -> tuple[list[tuple[str, int]], bool, str | None]:
    if not isinstance(value, list):
        raise ValueError(f"{what}: name_servers: expected a list, got {_kind(value)}")
    servers: list[tuple[str, int]] = []
    protocols: set[str] = set()
    source: str | None = None
    for entry in value:
        if isinstance(entry, str):
            servers.append(socket_addr(entry, "name server"))
            protocols.add("udp_then_tcp")
            continue
        detail = _table(entry, f"{what}: name_servers")
        known = ("socket_addr", "protocol", "trust_negative_responses", "bind_addr")
        _unknown(detail, known, f"{what}: name_servers")
        if "socket_addr" not in detail:
            raise ValueError(f"{what}: name_servers: missing field `socket_addr`")
        servers.append(socket_addr(detail["socket_addr"], "name server"))
        protocol = detail.get("protocol", "udp_then_tcp")
        if protocol not in _ENUMS["protocol"]:
            raise ValueError(
                f"{what}: name_servers: unknown variant `{protocol}`, "
                f"expected one of {_expected(_ENUMS['protocol'])}"
            )
        protocols.add(protocol)
        if "bind_addr" in detail:
            bound = socket_addr(
                detail["bind_addr"], f"name server '{detail['socket_addr']}' bind_addr"
            )
            source = source or bound[0]
    return servers, protocols == {"tcp"}, source


def test_config(value: object, what: str) -> TestResolver:
    """kumod's TestResolverConfig: a list of zones, or `{ zones = ..., servfail = ... }`."""
    servfail: object = []
    if isinstance(value, dict):
        _unknown(value, ("zones", "servfail"), what)
        if "zones" not in value:
            raise ValueError(f"{what}: missing field `zones`")
        zones, servfail = value["zones"], value.get("servfail", [])
    else:
        zones = value
    zones, servfail = _seq(zones), _seq(servfail)
    if not isinstance(zones, list) or not isinstance(servfail, list):
        raise ValueError(
            f"{what}: data did not match any variant of untagged enum TestResolverConfig"
        )
    specs: list[tuple[str, bool]] = []
    for zone in zones:
        if isinstance(zone, str):
            specs.append((zone, False))
        elif isinstance(zone, dict) and isinstance(zone.get("zone"), str):
            _unknown(zone, ("zone", "secure"), f"{what}: zones")
            specs.append((zone["zone"], bool(zone.get("secure", False))))
        else:
            raise ValueError(
                f"{what}: data did not match any variant of untagged enum ZoneSpec: {_kind(zone)}"
            )
    for name in servfail:
        absolute(str(name))
    return TestResolver(specs, [str(n) for n in servfail])


def resolver_config(
    value: object, what: str, make_upstream: MakeUpstream,
    system: Callable[[], Resolver],
) -> Resolver:  # fmt: skip
    """A KumoResolverConfig's resolver."""
    if isinstance(value, str):
        if value == "HickorySystemConfig":
            return system()
        if value in KINDS:
            raise ValueError(f"{what}: invalid type: unit variant, expected newtype variant")
        raise ValueError(f"{what}: unknown variant `{value}`, expected one of {_expected(KINDS)}")
    table = _table(value, what)
    if len(table) != 1:
        raise ValueError(f"{what}: expected a table with a single key (one of {_expected(KINDS)})")
    ((kind, body),) = table.items()
    if kind not in KINDS:
        raise ValueError(f"{what}: unknown variant `{kind}`, expected one of {_expected(KINDS)}")
    if kind == "HickorySystemConfig":
        return system()
    if kind == "Test":
        return test_config(body, what)
    if kind in ("Hickory", "Unbound"):
        config = dns_config(body, what, unbound=kind == "Unbound")
        if config.servers is None:
            return system()
        return make_upstream(config)
    return AggregateResolver(_aggregate(body, what, make_upstream, system))


def _aggregate(
    body: object, what: str, make_upstream: MakeUpstream, system: Callable[[], Resolver]
) -> list[Resolver]:
    """Its entries in order; named entries (`Test = ...` inside the list) come first."""
    table = body if isinstance(body, dict) else dict(enumerate(_list(body, what), 1))
    named = [{k: v} for k, v in table.items() if isinstance(k, str)]
    listed = [table[k] for k in sorted(k for k in table if isinstance(k, int))]
    children = []
    for index, child in enumerate(named + listed):
        children.append(resolver_config(child, f"{what}.Aggregate[{index}]", make_upstream, system))
    return children


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{what}.Aggregate: invalid type: {_kind(value)}, expected a list")
    return value
