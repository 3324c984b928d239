"""The Python client's connect (docs/clients/connect.md) over real loopback sockets:
the SMTP recorder, SOCKS5 server and guide's HAProxy of tests/peers, a PROXY v2
reader written here that checks the header's bytes, and a real sidecar for
connect by name. Sync and asyncio."""

from __future__ import annotations

import ipaddress
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from egress_client import AsyncResolver, Resolver, ResolverError
from egress_client._connect import Attempt, ConnectFailedError, prepare
from egress_client._dial import first_connected
from egress_client._proxy import socks5_exchange
from kumo.egress.v1.egress_source_pb2 import EgressSource, KeySource, VaultKeySource
from peers import haproxy
from peers.smtp import SmtpRecorder
from peers.socks5 import Socks5Server
from support import ServerProcess

TIMEOUT = 30.0
ip = ipaddress.ip_address


def greet(sock: socket.socket, ehlo: str) -> None:
    """Banner, EHLO, QUIT, as the example does."""
    with sock, sock.makefile("rwb") as stream:
        sock.settimeout(TIMEOUT)
        assert stream.readline().startswith(b"220")
        stream.write(f"EHLO {ehlo}\r\n".encode())
        stream.flush()
        while (line := stream.readline())[3:4] == b"-":
            pass
        assert line.startswith(b"250"), line
        stream.write(b"QUIT\r\n")
        stream.flush()
        assert stream.readline().startswith(b"221")


class ProxyV2Reader(socketserver.ThreadingTCPServer):
    """Reads a PROXY v2 header (signature, length, addresses), keeps its bytes and
    the peer, then says a banner and closes: what HAProxy sees, checked byte by byte."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, str]] = []
        self.arrived = threading.Event()
        super().__init__(("127.0.0.1", 0), _ProxyV2Handler)
        self.port = self.server_address[1]
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> ProxyV2Reader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(TIMEOUT)


class _ProxyV2Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: ProxyV2Reader = self.server  # type: ignore[assignment]
        sock: socket.socket = self.request
        sock.settimeout(TIMEOUT)
        head = _read(sock, 16)
        header = head + _read(sock, int.from_bytes(head[14:16], "big"))
        server.headers.append((header, sock.getpeername()[0]))
        server.arrived.set()
        sock.sendall(b"220 proxied\r\n")


def greeting(smtp: SmtpRecorder, **match: object) -> dict[str, object]:
    """The first EHLO record with these fields (waited for)."""

    def found(records: list[dict[str, object]]) -> list[dict[str, object]]:
        return [
            r for r in records if r["kind"] == "helo" and all(r[k] == v for k, v in match.items())
        ]

    return found(smtp.wait_for(lambda records: bool(found(records)), TIMEOUT))[0]


def _read(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpRecorder]:
    with SmtpRecorder() as recorder:
        yield recorder


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port held bound but not listening: a connect to it is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.fixture(scope="module")
def sidecar(smtp: SmtpRecorder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    policy = Path(tmp_path_factory.mktemp("connect")) / "policy.lua"
    policy.write_text(
        f"""
local kumo = require 'kumo'
local SOURCES = {{
  ['ip-2'] = {{ source_address = '127.0.0.2', ehlo_domain = 'two.example' }},
  ['wrong-port'] = {{ source_address = '127.0.0.3', remote_port = {smtp.port} }},
}}
kumo.on('get_egress_source', function(name)
  local fields = SOURCES[name]
  if fields == nil then return nil end
  fields.name = name
  return kumo.make_egress_source(fields)
end)
"""
    )
    with ServerProcess("--policy", str(policy), "--listen", "127.0.0.1:0") as server:
        server.wait_for_event("policy loaded")
        yield server.target


@pytest.fixture
def resolver(sidecar: str) -> Iterator[Resolver]:
    with Resolver(sidecar, connect_timeout=TIMEOUT) as client:
        yield client


def test_bind_by_name_is_seen_by_the_server_with_the_ehlo_domain(
    resolver: Resolver, smtp: SmtpRecorder
) -> None:
    sock, ehlo = resolver.connect("ip-2", smtp.hostport)
    assert ehlo == "two.example"
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    port = sock.getsockname()[1]
    greet(sock, ehlo)
    seen = greeting(smtp, port=port)
    assert (seen["peer"], seen["helo"]) == ("127.0.0.2", "two.example")


def test_remote_port_replaces_the_port_and_ehlo_defaults_to_the_host_name(
    resolver: Resolver, smtp: SmtpRecorder, closed_port: int
) -> None:
    sock, ehlo = resolver.connect("wrong-port", f"127.0.0.1:{closed_port}")
    assert ehlo == socket.gethostname()
    assert sock.getpeername()[1] == smtp.port
    greet(sock, ehlo)


async def test_async_bind_and_streams(sidecar: str, smtp: SmtpRecorder) -> None:
    async with AsyncResolver(sidecar) as client:
        reader, writer, ehlo = await client.connect("ip-2", smtp.hostport, timeout=TIMEOUT)
        assert writer.get_extra_info("sockname")[0] == "127.0.0.2"
        assert (await reader.readline()).startswith(b"220")
        writer.write(b"QUIT\r\n")
        assert (await reader.readline()).startswith(b"221")
        writer.close()
        await writer.wait_closed()
        assert ehlo == "two.example"


def test_proxy_v2_header_bytes(resolver: Resolver) -> None:
    source = EgressSource(
        name="ha-1",
        source_address="127.0.0.4",
        ha_proxy_server="",
        ha_proxy_source_address="10.1.2.3",
        remote_port=2525,
    )
    with ProxyV2Reader() as reader:
        source.ha_proxy_server = f"localhost:{reader.port}"  # a name, resolved at connect
        sock, _ehlo = resolver.connect(source, "192.0.2.9:25")
        with sock:
            assert sock.recv(64) == b"220 proxied\r\n"  # nothing else came first
        assert reader.arrived.wait(TIMEOUT)
        [(header, peer)] = reader.headers
    assert peer == "127.0.0.4"
    assert header == (
        b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c"
        + bytes([10, 1, 2, 3, 192, 0, 2, 9])
        + (0).to_bytes(2, "big")
        + (2525).to_bytes(2, "big")
    )


def test_real_haproxy_makes_the_destination_see_the_proxy_source_address(
    resolver: Resolver, smtp: SmtpRecorder
) -> None:
    reason = haproxy.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with haproxy.HAProxy() as proxy:
        source = EgressSource(
            name="ha-2",
            ehlo_domain="ha.example",
            ha_proxy_server=proxy.hostport,
            ha_proxy_source_address="127.0.0.6",
        )
        sock, ehlo = resolver.connect(source, smtp.hostport)
        greet(sock, ehlo)
        seen = greeting(smtp, helo="ha.example")
    assert seen["peer"] == "127.0.0.6"


def socks_source(name: str, proxy: Socks5Server, **fields: object) -> EgressSource:
    source = EgressSource(
        name=name,
        ehlo_domain=f"{name}.example",
        socks5_proxy_server=proxy.hostport,
        socks5_proxy_source_address="127.0.0.5",
    )
    for key, value in fields.items():
        field = getattr(source, key)
        if isinstance(value, KeySource):
            field.CopyFrom(value)
        else:
            setattr(source, key, value)
    return source


@pytest.mark.parametrize("password", ["inline", "file"])
def test_socks5_binds_then_connects_with_username_and_password(
    resolver: Resolver, smtp: SmtpRecorder, tmp_path: Path, password: str
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cret")
    key = KeySource(key_data="s3cret") if password == "inline" else KeySource(file=str(secret_file))
    with Socks5Server(users={"mta": "s3cret"}) as proxy:
        name = f"sx-{password}"
        source = socks_source(name, proxy, socks5_proxy_username="mta", socks5_proxy_password=key)
        sock, ehlo = resolver.connect(source, smtp.hostport)
        greet(sock, ehlo)
        [bind] = proxy.wait_count("bind", 1)
        [connect] = proxy.wait_count("connect", 1)
    assert (bind["address"], bind["rep"]) == ("127.0.0.5", 0)
    assert (connect["to"], connect["rep"]) == (smtp.hostport, 0)
    assert greeting(smtp, helo=f"{name}.example")["peer"] == "127.0.0.5"


async def test_async_socks5_no_auth(sidecar: str, smtp: SmtpRecorder) -> None:
    with Socks5Server() as proxy:
        async with AsyncResolver(sidecar) as client:
            reader, writer, _ehlo = await client.connect(socks_source("sa", proxy), smtp.hostport)
            assert (await reader.readline()).startswith(b"220")
            writer.close()
            await writer.wait_closed()
        [bind] = proxy.wait_count("bind", 1)
    assert bind["address"] == "127.0.0.5"


@pytest.mark.parametrize(
    ("fields", "server", "message"),
    [
        (
            {"socks5_proxy_username": "mta", "socks5_proxy_password": KeySource(key_data="no")},
            {"users": {"mta": "s3cret"}},
            "SOCKS5 username/password was incorrect",
        ),
        (
            {
                "socks5_proxy_username": "mta",
                "socks5_proxy_password": KeySource(vault=VaultKeySource(vault_path="p")),
            },
            {"users": {"mta": "s3cret"}},
            "vault KeySource is not supported",
        ),
        ({}, {"refuse_bind": True}, "the proxy server failed to bind 127.0.0.5"),
    ],
)
def test_socks5_failures_are_proxy_unhealthy(
    resolver: Resolver,
    smtp: SmtpRecorder,
    fields: dict[str, object],
    server: dict[str, object],
    message: str,
) -> None:
    with (
        Socks5Server(**server) as proxy,  # type: ignore[arg-type]
        pytest.raises(ResolverError) as failed,
    ):
        resolver.connect(socks_source("sf", proxy, **fields), smtp.hostport)
    error = failed.value
    assert (error.code, error.reason, error.name) == (
        grpc.StatusCode.UNAVAILABLE,
        "PROXY_UNHEALTHY",
        "sf",
    )
    assert error.message.startswith(f"source sf: proxy {proxy.hostport}: ")
    assert message in error.message


def test_unplumbed_source_address(resolver: Resolver, smtp: SmtpRecorder) -> None:
    with pytest.raises(ResolverError) as failed:
        resolver.connect(EgressSource(name="ip-9", source_address="192.0.2.1"), smtp.hostport)
    assert (failed.value.code, failed.value.reason) == (
        grpc.StatusCode.UNAVAILABLE,
        "SOURCE_UNPLUMBED",
    )
    assert failed.value.message == (
        "source ip-9: bind 192.0.2.1:0 failed: "
        "[Errno 99] Cannot assign requested address (EADDRNOTAVAIL)"
    )


async def test_refused_proxy_and_refused_destination(sidecar: str, closed_port: int) -> None:
    proxied = EgressSource(
        name="px-1",
        socks5_proxy_server=f"127.0.0.1:{closed_port}",
        socks5_proxy_source_address="127.0.0.5",
    )
    async with AsyncResolver(sidecar) as client:
        with pytest.raises(ResolverError) as proxy_failed:
            await client.connect(proxied, "127.0.0.1:25")
        with pytest.raises(ResolverError) as direct_failed:
            await client.connect(EgressSource(name="d-1"), f"127.0.0.1:{closed_port}")
    assert proxy_failed.value.reason == "PROXY_UNHEALTHY"
    assert proxy_failed.value.message.startswith(f"source px-1: proxy 127.0.0.1:{closed_port}: ")
    assert proxy_failed.value.message.endswith("(ECONNREFUSED)")
    assert direct_failed.value.reason == "CONNECT_FAILED"
    assert direct_failed.value.message.startswith(f"source d-1: connect 127.0.0.1:{closed_port}: ")


def test_family_filtering(resolver: Resolver) -> None:
    source = EgressSource(
        name="px-6",
        source_address="127.0.0.2",
        socks5_proxy_server="[::1]:1080",
        socks5_proxy_source_address="127.0.0.5",
    )
    with pytest.raises(ResolverError) as failed:
        resolver.connect(source, "127.0.0.1:25")
    assert failed.value.reason == "PROXY_UNHEALTHY"
    assert "no socks5_proxy_server candidates remain after filtering 1" in failed.value.message


def test_one_deadline_for_a_silent_proxy(resolver: Resolver) -> None:
    """A proxy that accepts and never answers the greeting: the attempt ends at the deadline."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        source = EgressSource(
            name="px-silent",
            socks5_proxy_server=f"127.0.0.1:{silent.getsockname()[1]}",
            socks5_proxy_source_address="127.0.0.5",
        )
        start = time.monotonic()
        with pytest.raises(ResolverError) as failed:
            resolver.connect(source, "127.0.0.1:25", timeout=0.5)
        took = time.monotonic() - start
    assert failed.value.reason == "PROXY_UNHEALTHY"
    assert "timeout after 0.5s during the proxy handshake" in failed.value.message
    assert 0.45 <= took < 0.5 + 10  # the deadline, plus the report's own short allowance


def test_candidates_are_tried_in_turn(smtp: SmtpRecorder, closed_port: int) -> None:
    """Two proxy candidates, as a proxy name with two addresses gives (this host's
    names have one address each, so the candidates are made here): the first
    refuses, the second connects; when both fail, the message lists each."""
    with Socks5Server() as proxy:
        prepared = prepare(socks_source("px-2", proxy), smtp.hostport)
        destination = (ip("127.0.0.1"), smtp.port)

        def through(host: str, port: int) -> Attempt:
            exchange = lambda: socks5_exchange(ip("127.0.0.5"), *destination)  # noqa: E731
            return Attempt((ip(host), port), destination, exchange)

        deadline = time.monotonic() + TIMEOUT
        first = [through("127.0.0.1", closed_port), through("127.0.0.1", proxy.port)]
        greet(first_connected(prepared, first, deadline, TIMEOUT), "px-2.example")
        both = [through("127.0.0.1", closed_port), through("127.0.0.2", closed_port)]
        with pytest.raises(ConnectFailedError) as failed:
            first_connected(prepared, both, deadline, TIMEOUT)
    assert failed.value.reason == "PROXY_UNHEALTHY"
    assert f"proxy 127.0.0.1:{closed_port}: [Errno 111]" in failed.value.message
    assert f"; proxy 127.0.0.2:{closed_port}: [Errno 111]" in failed.value.message


async def test_async_one_deadline_for_a_silent_proxy(sidecar: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        source = EgressSource(
            name="ha-silent",
            ha_proxy_server=f"127.0.0.1:{silent.getsockname()[1]}",
            ha_proxy_source_address="127.0.0.5",
        )
        blackhole = EgressSource(
            name="px-silent",
            socks5_proxy_server=f"127.0.0.1:{silent.getsockname()[1]}",
            socks5_proxy_source_address="127.0.0.5",
        )
        async with AsyncResolver(sidecar) as client:
            # HAProxy needs no answer: the header is written and the stream is returned.
            _reader, writer, _ehlo = await client.connect(source, "127.0.0.1:25", timeout=5)
            writer.close()
            await writer.wait_closed()
            start = time.monotonic()
            with pytest.raises(ResolverError) as failed:
                await client.connect(blackhole, "127.0.0.1:25", timeout=0.5)
            took = time.monotonic() - start
    assert failed.value.reason == "PROXY_UNHEALTHY"
    assert "timeout after 0.5s during the proxy handshake" in failed.value.message
    assert 0.45 <= took < 0.5 + 10  # (an event loop timer may fire a hair early)
