"""The Python client's connect (docs/clients/connect.md) through proxies, over real
loopback sockets: a PROXY v2 reader that checks the header's bytes, the guide's
real HAProxy, and the SOCKS5 server of tests/peers (kumod's side of the
exchange). Sync and asyncio."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from connect_support import TIMEOUT, ProxyV2Reader, greet, greeting, socks_source

from egress_client import AsyncResolver, Resolver, ResolverError
from kumo.egress.v1.egress_source_pb2 import EgressSource, KeySource, VaultKeySource
from peers import haproxy
from peers.smtp import SmtpRecorder
from peers.socks5 import Socks5Server
from support import ServerProcess


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpRecorder]:
    with SmtpRecorder() as recorder:
        yield recorder


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A sidecar that knows no source: the reports of these tests go to it (and are refused)."""
    policy = Path(tmp_path_factory.mktemp("proxies")) / "policy.lua"
    policy.write_text("require('kumo').on('get_egress_source', function(name) return nil end)\n")
    with ServerProcess("--policy", str(policy), "--listen", "127.0.0.1:0") as server:
        server.wait_for_event("policy loaded")
        yield server.target


@pytest.fixture
def resolver(sidecar: str) -> Iterator[Resolver]:
    with Resolver(sidecar, connect_timeout=TIMEOUT) as client:
        yield client


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
