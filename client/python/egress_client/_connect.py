"""What `connect` does, apart from the sockets: kumod's `connect_to` steps as data.

docs/clients/connect.md is the contract. `prepare` reads the source (port,
transport, addresses), `attempts` turns the resolved addresses into the
candidates to try in order (family rules included), and `Tally` collects
each candidate's failure and classifies the whole as kumod does
(SOURCE_UNPLUMBED, PROXY_UNHEALTHY or CONNECT_FAILED). The blocking and the
asyncio drivers (_dial.py, _adial.py) do the resolving and the I/O.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import socket
from collections.abc import Callable, Sequence

import grpc

from egress_client._errors import ResolverError
from egress_client._proxy import IP, Exchange, haproxy_exchange, hostport, socks5_exchange
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1.egress_source_pb2 import EgressSource

SOURCE_UNPLUMBED = "SOURCE_UNPLUMBED"
PROXY_UNHEALTHY = "PROXY_UNHEALTHY"
CONNECT_FAILED = "CONNECT_FAILED"
_CLASSES = {
    SOURCE_UNPLUMBED: pb.FAILURE_CLASS_SOURCE_UNPLUMBED,
    PROXY_UNHEALTHY: pb.FAILURE_CLASS_PROXY_UNHEALTHY,
    CONNECT_FAILED: pb.FAILURE_CLASS_CONNECT_FAILED,
}


class ConnectFailedError(Exception):
    """A classified connect failure: what to raise, and what (if anything) to report."""

    def __init__(self, reason: str, source: str, message: str, address: str, report: bool) -> None:
        super().__init__(message)
        self.reason = reason
        self.source = source
        self.message = message
        self.address = address
        self.report = report

    @property
    def failure_class(self) -> pb.FailureClass.ValueType:
        """The FailureClass of the reason."""
        return _CLASSES[self.reason]

    def error(self) -> ResolverError:
        """The error `connect` raises."""
        return ResolverError(grpc.StatusCode.UNAVAILABLE, self.message, self.reason, self.source)


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """A `HOST:PORT` (or proxy) address; `ip` when HOST is an IP literal."""

    host: str
    port: int
    ip: IP | None


def parse_endpoint(text: str, what: str) -> Endpoint:
    """`1.2.3.4:25`, `[::1]:25`, `::1:25` or `name:25`; ValueError otherwise."""
    host, sep, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{what} {text!r} is not HOST:PORT")
    try:
        ip: IP | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    return Endpoint(host, int(port_text), ip)


@dataclasses.dataclass(frozen=True, slots=True)
class Prepared:
    """A source read for one connect: destination (port replaced), bind address, proxy."""

    source: EgressSource
    destination: Endpoint
    bind: IP | None
    field: str
    """The proxy's field (`ha_proxy_server`, `socks5_proxy_server`), or "" for direct."""
    proxy: Endpoint | None
    proxy_source: IP | None

    @property
    def name(self) -> str:
        return self.source.name

    def fail(self, cause: str, reason: str | None = None) -> ConnectFailedError:
        """A failure before any candidate was tried: never reported, as kumod
        records a proxy's failure only once it connects to or talks with it
        (its `resolve_proxy_protocols` returns before `maybe_record_health_failure`)."""
        chosen = reason or (PROXY_UNHEALTHY if self.field else CONNECT_FAILED)
        address = self.proxy_text if chosen == PROXY_UNHEALTHY else self.destination.host
        message = f"source {self.name}: {cause}"
        return ConnectFailedError(chosen, self.name, message, address, False)

    @property
    def proxy_text(self) -> str:
        field = self.field
        return str(getattr(self.source, field)) if field else ""

    def resolve_failed(
        self, endpoint: Endpoint, err: Exception, timeout: float, *, proxy: bool
    ) -> ConnectFailedError:
        """Resolving the destination (CONNECT_FAILED) or the proxy (PROXY_UNHEALTHY) failed."""
        what = f"{self.field} {endpoint.host}" if proxy else f"destination {endpoint.host}"
        if isinstance(err, TimeoutError):
            cause = deadline_cause(timeout, "resolving " + what)
        else:
            cause = f"resolving {what}: {os_error_text(err) if isinstance(err, OSError) else err}"
        return self.fail(cause, PROXY_UNHEALTHY if proxy else CONNECT_FAILED)


def ehlo_name(source: EgressSource) -> str:
    """The name to say in EHLO: `ehlo_domain`, or else the host name."""
    return source.ehlo_domain or socket.gethostname()


def prepare(source: EgressSource, to: str) -> Prepared:
    """Steps 2 and 3 of connect.md: the port, the transport, the addresses."""
    destination = parse_endpoint(to, "destination")
    if source.HasField("remote_port"):
        destination = dataclasses.replace(destination, port=source.remote_port)
    field, proxy_source_field = "", ""
    if source.ha_proxy_server and source.ha_proxy_source_address:
        field, proxy_source_field = "ha_proxy_server", "ha_proxy_source_address"
    elif source.socks5_proxy_server and source.socks5_proxy_source_address:
        field, proxy_source_field = "socks5_proxy_server", "socks5_proxy_source_address"
    plain = Prepared(source, destination, None, field, None, None)
    try:
        bind = ipaddress.ip_address(source.source_address) if source.source_address else None
    except ValueError:
        raise plain.fail(
            f"source_address {source.source_address!r} is not an IP address", SOURCE_UNPLUMBED
        ) from None
    prepared = dataclasses.replace(plain, bind=bind)
    if not field:
        return prepared
    server = str(getattr(source, field))
    if server.startswith(("/", "unix:")):
        raise prepared.fail(f"{field} {server}: a unix-path proxy cannot be used")
    try:
        proxy = parse_endpoint(server, field)
        proxy_source = ipaddress.ip_address(getattr(source, proxy_source_field))
    except ValueError as err:
        raise prepared.fail(str(err)) from None
    return dataclasses.replace(prepared, proxy=proxy, proxy_source=proxy_source)


@dataclasses.dataclass(frozen=True, slots=True)
class Attempt:
    """One candidate: where the TCP connection goes, and the handshake on it."""

    transport: tuple[IP, int]
    destination: tuple[IP, int]
    handshake: Callable[[], Exchange] | None

    @property
    def proxied(self) -> bool:
        return self.handshake is not None

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET if self.transport[0].version == 4 else socket.AF_INET6


def attempts(prepared: Prepared, destinations: list[IP], proxies: list[IP]) -> list[Attempt]:
    """Step 4: the candidates in order, each destination address with each
    proxy address; raises ConnectFailedError when the family rules leave none."""
    port = prepared.destination.port
    bind = prepared.bind
    if prepared.proxy is None:
        kept = [ip for ip in destinations if bind is None or ip.version == bind.version]
        if not kept:
            raise prepared.fail(
                f"destination {prepared.destination.host} has no address of the family of "
                f"source_address {bind}"
            )
        return [Attempt((ip, port), (ip, port), None) for ip in kept]
    proxy_source = prepared.proxy_source
    assert proxy_source is not None
    matching = [ip for ip in destinations if ip.version == proxy_source.version]
    if not matching:
        raise prepared.fail(
            f"{prepared.field} {prepared.proxy_text}: address family does not match: "
            f"{prepared.field.replace('server', 'source_address')} {proxy_source}, "
            f"destination {', '.join(map(str, destinations))}"
        )
    candidates = [ip for ip in proxies if bind is None or ip.version == bind.version]
    if not candidates:
        raise prepared.fail(
            f"no {prepared.field} candidates remain after filtering {len(proxies)} resolved "
            f"address(es) to match source_address {bind} family"
        )
    return [
        Attempt((proxy, prepared.proxy.port), (ip, port), _handshake(prepared, ip, port))
        for ip in matching
        for proxy in candidates
    ]


def _handshake(prepared: Prepared, ip: IP, port: int) -> Callable[[], Exchange]:
    source, proxy_source = prepared.source, prepared.proxy_source
    assert proxy_source is not None
    if prepared.field == "ha_proxy_server":
        return lambda: haproxy_exchange(proxy_source, ip, port)
    username = source.socks5_proxy_username if source.HasField("socks5_proxy_username") else None
    password = source.socks5_proxy_password if source.HasField("socks5_proxy_password") else None
    return lambda: socks5_exchange(proxy_source, ip, port, username, password)


def addresses(
    infos: Sequence[tuple[object, object, object, object, tuple[object, ...]]],
) -> list[IP]:
    """The distinct IP addresses of getaddrinfo's answer, in its order."""
    found: list[IP] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if ip not in found:
            found.append(ip)
    return found


def bound_socket(prepared: Prepared, attempt: Attempt, tally: Tally) -> socket.socket | None:
    """A TCP socket for `attempt`, TCP_NODELAY on, bound to the source address
    (port 0) when there is one: kumod's steps before the connect. None (closed,
    the failure in `tally`) when the bind fails."""
    sock = socket.socket(attempt.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if prepared.bind is not None:
            try:
                sock.bind((str(prepared.bind), 0))
            except OSError as err:
                tally.bind_failed(attempt, err)
                sock.close()
                return None
    except BaseException:
        sock.close()
        raise
    return sock


def deadline_cause(timeout: float, step: str) -> str:
    """The deadline passed (after `timeout` seconds in all) while `step`."""
    return f"timeout after {timeout:g}s {step}"


def step_cause(step: str, err: OSError) -> str:
    """An OSError while connecting (its text alone) or during the handshake."""
    return os_error_text(err) if step == "connecting" else f"{step}: {os_error_text(err)}"


def os_error_text(err: OSError) -> str:
    """`[Errno 99] Cannot assign requested address (EADDRNOTAVAIL)`."""
    name = errno.errorcode.get(err.errno or 0)
    return f"{err} ({name})" if name else str(err) or type(err).__name__


class Tally:
    """Each candidate's failure, then the classification of step 6."""

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        self._causes: list[str] = []
        self._bind_errnos: list[int | None] = []
        self._proxies: list[str] = []
        self._unbindable: set[socket.AddressFamily] = set()

    def skip(self, attempt: Attempt) -> bool:
        """Whether binding already failed for this candidate's family (it would again)."""
        return attempt.family in self._unbindable

    def bind_failed(self, attempt: Attempt, err: OSError) -> None:
        self._unbindable.add(attempt.family)
        self._bind_errnos.append(err.errno)
        bind = hostport(str(self.prepared.bind), 0)
        self._causes.append(f"bind {bind} failed: {os_error_text(err)}")

    def failed(self, attempt: Attempt, cause: str) -> None:
        """Connecting to the candidate or its handshake failed (or the deadline passed)."""
        where = hostport(*attempt.transport)
        if attempt.proxied:
            self._proxies.append(where)
            self._causes.append(f"proxy {where}: {cause}")
        else:
            self._causes.append(f"connect {where}: {cause}")

    def outcome(self) -> ConnectFailedError:
        """Step 6: SOURCE_UNPLUMBED when every candidate failed its bind, else
        PROXY_UNHEALTHY when a proxy was involved (reported), else CONNECT_FAILED."""
        prepared = self.prepared
        if not self._causes:
            return prepared.fail("the deadline passed before any candidate was tried")
        name = prepared.name
        message = f"source {name}: " + "; ".join(self._causes)
        if len(self._bind_errnos) == len(self._causes):
            report = self._bind_errnos[0] == errno.EADDRNOTAVAIL  # kumod's is_unplumbed
            return ConnectFailedError(SOURCE_UNPLUMBED, name, message, str(prepared.bind), report)
        if self._proxies:
            return ConnectFailedError(PROXY_UNHEALTHY, name, message, self._proxies[-1], True)
        address = hostport(prepared.destination.host, prepared.destination.port)
        return ConnectFailedError(CONNECT_FAILED, name, message, address, False)
