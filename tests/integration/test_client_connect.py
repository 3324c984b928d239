"""The Python client's connect (docs/clients/connect.md) over real loopback sockets,
directly: bind, remote_port, the failure classes, one deadline, candidates in
turn; a real sidecar for connect by name. Sync and asyncio. The proxies are
in test_client_connect_proxies.py."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from connect_support import TIMEOUT, greet, greeting, refusing_port, socks_source

from egress_client import AsyncResolver, Resolver, ResolverError
from egress_client._connect import Attempt, ConnectFailedError, prepare
from egress_client._dial import first_connected
from egress_client._proxy import socks5_exchange
from kumo.egress.v1.egress_source_pb2 import EgressSource
from peers.smtp import SmtpRecorder
from peers.socks5 import Socks5Server
from support import ServerProcess

ip = ipaddress.ip_address


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpRecorder]:
    with SmtpRecorder() as recorder:
        yield recorder


@pytest.fixture
def closed_port() -> Iterator[int]:
    with refusing_port() as port:
        yield port


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
