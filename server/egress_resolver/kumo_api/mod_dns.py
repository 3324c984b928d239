"""`kumo.dns`: kumod's DNS module (crates/mod-dns-resolver), on dnspython.

Lookups (`lookup_addr`, `lookup_mx`, `lookup_txt`, `lookup_ptr`,
`rbl_lookup`) return an IoRequest that the handler awaits while other
handlers run, each with an optional resolver name (`define_resolver`);
without one they use the default resolver: the machine's (/etc/resolv.conf)
or `--dns-servers`, until `configure_resolver` replaces it. Answers are
cached for their TTL (dns_resolvers.py); MX lookups have their own timeout,
concurrency limit and negative cache (dns_mx.py). NXDOMAIN and "no records" are
answers, as in kumod: empty lists (lookup_mx: an error, "NXDOMAIN"); a
SERVFAIL, REFUSED, unreachable server is DATA_SOURCE_ERROR and a timeout
DATA_SOURCE_TIMEOUT, with a message naming the query (name and type).
`ptr_host` and `reverse_ip` are string functions. Configurations are read
as strictly as kumod reads them (dns_config.py); `load_resolv_conf`
reads a resolv.conf (resolv_conf.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from egress_resolver.bridge.values import to_lua, to_python
from egress_resolver.definitions.durations import NANOS_PER_SECOND, DurationError, parse_duration
from egress_resolver.definitions.errors import Reason
from egress_resolver.kumo_api import dns_config, dns_lookups, resolv_conf
from egress_resolver.kumo_api.context import ApiContext, LuaModule
from egress_resolver.kumo_api.dns_mx import MxLookups
from egress_resolver.kumo_api.dns_resolvers import (
    TXT,
    DnsError,
    Resolver,
    absolute,
    get_clock,
    ptr_host,
    reverse_ip,
)
from egress_resolver.kumo_api.dns_upstream import UpstreamConfig, UpstreamResolver
from egress_resolver.kumo_api.io import IoRequest

_SHIM = """
local py, await = ...
local dns = {}
for _, name in ipairs { 'lookup_addr', 'lookup_mx', 'lookup_txt', 'lookup_ptr' } do
  local fn = py[name]
  dns[name] = function(...) return await(fn(...)) end
end
function dns.rbl_lookup(...)
  local found = await(py.rbl_lookup(...), 3)
  return found.ip, found.txt
end
for _, name in ipairs { 'define_resolver', 'configure_resolver', 'configure_unbound_resolver',
    'configure_test_resolver', 'configure_test_mta_sts', 'load_resolv_conf', 'ptr_host',
    'reverse_ip', 'set_mx_timeout', 'set_mx_negative_cache_ttl', 'set_mx_concurrency_limit',
    'set_mta_sts_enabled' } do
  dns[name] = py[name]
end
return dns
"""


def _classify(err: BaseException) -> Reason | None:
    if isinstance(err, DnsError):
        return Reason.DATA_SOURCE_TIMEOUT if err.timeout else Reason.DATA_SOURCE_ERROR
    return None


async def _nothing(value: object) -> None:
    return None


def _text(value: object, what: str) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"kumo.dns.{what}: expected a string, got {type(value).__name__}")


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"invalid IP address syntax: {text!r}") from None


def _seconds(value: object, what: str) -> float:
    try:
        return parse_duration(to_python(value)) / NANOS_PER_SECOND
    except DurationError as err:
        raise ValueError(f"kumo.dns.{what}: {err}") from None


class DnsModule:
    """The Python half of `kumo.dns` for one loaded policy."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx
        self._named: dict[str, Resolver] = {}
        self._default: Resolver | None = None
        self._mx = MxLookups()
        self.mta_sts_enabled = True

    def build(self) -> object:
        names = ("lookup_addr", "lookup_mx", "lookup_txt", "lookup_ptr", "rbl_lookup",
                 "define_resolver", "configure_resolver", "configure_unbound_resolver",
                 "configure_test_resolver", "configure_test_mta_sts", "load_resolv_conf",
                 "ptr_host", "reverse_ip", "set_mx_timeout", "set_mx_negative_cache_ttl",
                 "set_mx_concurrency_limit", "set_mta_sts_enabled")  # fmt: skip
        return self._ctx.shim(_SHIM, {name: getattr(self, name) for name in names})

    # -- resolvers -------------------------------------------------------------

    def _upstream(self, config: UpstreamConfig) -> Resolver:
        clock = get_clock(self._ctx.io)
        make = lambda: UpstreamResolver(config, clock)  # noqa: E731
        resolver: Resolver = self._ctx.io.shared(("kumo.dns", config), make, _nothing)
        return resolver

    def _system(self) -> Resolver:
        """The machine's resolver, or the name servers of `--dns-servers` when given."""
        configured = self._ctx.state.options.dns_servers
        servers = tuple(dns_config.server_address(s) for s in configured) or None
        return self._upstream(UpstreamConfig(servers=servers))

    def _resolver(self, name: object) -> tuple[Resolver, bool]:
        """The named resolver (or the default one), and whether it is the default."""
        if name is None:
            if self._default is None:
                self._default = self._system()
            return self._default, True
        text = _text(name, "resolver name")
        found = self._named.get(text)
        if found is None:
            raise ValueError(f"resolver {text} is not defined")
        return found, False

    def _config(self, config: object, what: str) -> Resolver:
        return dns_config.resolver_config(to_python(config), what, self._upstream, self._system)

    def define_resolver(self, name: object, config: object) -> None:
        text = _text(name, "define_resolver")
        self._named[text] = self._config(config, f"define_resolver({text!r})")

    def configure_resolver(self, config: object) -> None:
        """A KumoResolverConfig, else a DnsResolverConfig (a Hickory resolver), as kumod."""
        try:
            self._default = self._config(config, "configure_resolver")
            return
        except ValueError as err:
            first = err
        try:
            parsed = dns_config.dns_config(to_python(config), "configure_resolver")
        except ValueError as second:
            raise ValueError(
                "failed to parse config as either KumoResolverConfig "
                f"({first}) or DnsResolverConfig ({second})"
            ) from None
        self._default = self._upstream(parsed)

    def configure_unbound_resolver(self, config: object) -> None:
        what = "configure_unbound_resolver"
        parsed = dns_config.dns_config(to_python(config), what, unbound=True)
        self._default = self._system() if parsed.servers is None else self._upstream(parsed)

    def configure_test_resolver(self, config: object) -> None:
        self._default = dns_config.test_config(to_python(config), "configure_test_resolver")

    def configure_test_mta_sts(self, policies: object) -> None:
        """Accepted: MTA-STS policies are not consulted here (lookup_mx's mta_sts is 'None')."""

    def load_resolv_conf(self, path: object = None) -> object:
        text = "/etc/resolv.conf" if path is None else _text(path, "load_resolv_conf")
        return to_lua(self._ctx.runtime, resolv_conf.load_resolv_conf(self._ctx.resolve_path(text)))

    # -- MX settings -----------------------------------------------------------

    def set_mx_timeout(self, duration: object) -> None:
        self._mx.timeout = _seconds(duration, "set_mx_timeout")

    def set_mx_negative_cache_ttl(self, duration: object) -> None:
        self._mx.negative_ttl = _seconds(duration, "set_mx_negative_cache_ttl")

    def set_mx_concurrency_limit(self, limit: object) -> None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise ValueError(f"kumo.dns.set_mx_concurrency_limit: expected a count, got {limit!r}")
        self._mx.limit = limit

    def set_mta_sts_enabled(self, enabled: object) -> None:
        if not isinstance(enabled, bool):
            raise ValueError(f"kumo.dns.set_mta_sts_enabled: expected a boolean, got {enabled!r}")
        self.mta_sts_enabled = enabled

    # -- lookups ---------------------------------------------------------------

    def _request(
        self, what: str, run: Callable[[], Awaitable[Any]], timeout: float, convert: bool = True
    ) -> IoRequest:
        runtime = self._ctx.runtime
        return IoRequest(
            what,
            run,
            timeout if timeout > 0 else None,
            to_lua=(lambda value: to_lua(runtime, value)) if convert else (lambda value: value),
            classify=_classify,
        )

    def lookup_addr(
        self, name: object, resolver: object = None, strategy: object = None
    ) -> IoRequest:
        text = _text(name, "lookup_addr")
        chosen = "Ipv4AndIpv6" if strategy is None else _text(strategy, "lookup_addr")
        if chosen not in dns_lookups.STRATEGIES:
            expected = ", ".join(f"`{s}`" for s in dns_lookups.STRATEGIES)
            raise ValueError(f"unknown variant `{chosen}`, expected one of {expected}")
        target, _ = self._resolver(resolver)
        literal = dns_lookups.address_literal(text) if not text.startswith("/") else [text]
        if literal is not None:
            return self._request("DNS", lambda: asyncio.sleep(0, literal), 0)
        qname = absolute(text)
        steps = 1 if chosen.endswith("Only") or "And" in chosen else 2
        types = dns_lookups.strategy_types(chosen)
        return self._request(
            f"DNS: failed to query DNS for {qname} ({types})",
            lambda: dns_lookups.lookup_addr(target, qname, chosen),
            target.lifetime * steps,
        )

    def lookup_ptr(self, ip: object, resolver: object = None) -> IoRequest:
        address = _ip(_text(ip, "lookup_ptr"))
        target, _ = self._resolver(resolver)
        qname = absolute(ptr_host(address))
        what = f"DNS: failed to query DNS for {qname} (PTR)"
        return self._request(what, lambda: target.resolve_ptr(qname), target.lifetime)

    def lookup_txt(self, name: object, resolver: object = None) -> IoRequest:
        target, _ = self._resolver(resolver)
        qname = absolute(_text(name, "lookup_txt"))

        async def run() -> list[str]:
            return dns_lookups.txt_strings(await target.resolve(qname, TXT))

        return self._request(f"DNS: failed to query DNS for {qname} (TXT)", run, target.lifetime)

    def rbl_lookup(self, ip: object, base: object, resolver: object = None) -> IoRequest:
        target, _ = self._resolver(resolver)
        address = dns_lookups.parse_rbl_address(_text(ip, "rbl_lookup"))
        qname = absolute(dns_lookups.rbl_name(address, _text(base, "rbl_lookup")))
        return self._request(
            f"DNS: failed to query DNS for {qname} (A, AAAA)",
            lambda: dns_lookups.rbl_lookup(target, qname),
            target.lifetime * 3,
        )

    def lookup_mx(self, domain: object, resolver: object = None) -> IoRequest:
        text = _text(domain, "lookup_mx")
        target, is_default = self._resolver(resolver)
        classified = dns_lookups.classify_domain(text)
        if isinstance(classified, str):
            result = dns_lookups.literal_mx(text, classified)
            return self._request("DNS", lambda: asyncio.sleep(0, result), 0)
        qname, port = classified
        clock = get_clock(self._ctx.io)
        run = lambda: self._mx.lookup(target, qname, port, clock, remember=is_default)  # noqa: E731
        return self._request(f"MX lookup for {text} failed", run, self._mx.time_limit(target))

    # -- string functions --------------------------------------------------------

    def ptr_host(self, ip: object) -> str:
        return ptr_host(_ip(_text(ip, "ptr_host")))

    def reverse_ip(self, ip: object) -> str:
        return reverse_ip(_ip(_text(ip, "reverse_ip")))


MODULE = LuaModule("kumo.dns", lambda ctx: DnsModule(ctx).build())
