"""A policy that looks names up in DNS, through gRPC: a real dnsmasq, SERVFAIL and
silent name servers (DATA_SOURCE_ERROR / DATA_SOURCE_TIMEOUT), lookups side by side."""

import asyncio
import json
import shutil
import time
from pathlib import Path

import grpc
import pytest
from datasources import DnsServer, StubDnsServer

from egress_client import Resolver, ResolverError
from egress_resolver.ops.settings import Settings
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc
from support import DEADLINE, InProcessServer

LIVE = Path(__file__).parent.parent / "fixtures" / "live"


def dns_policy(tmp_path: Path, **servers: str) -> Path:
    (tmp_path / "endpoints.json").write_text(json.dumps(servers))
    return Path(shutil.copy(LIVE / "dns.lua", tmp_path / "dns.lua"))


def settings(policy: Path, **kw: object) -> Settings:
    return Settings(
        policy=policy,
        listen=["127.0.0.1:0"],
        handler_timeout=10.0,
        **kw,  # type: ignore[arg-type]
    )


def test_sources_from_dns_and_its_failures(tmp_path: Path, dns_server: DnsServer) -> None:
    with StubDnsServer() as broken, StubDnsServer(silent=True) as silent:
        policy = dns_policy(
            tmp_path, dns=dns_server.address, broken=broken.address, silent=silent.address
        )
        with InProcessServer(settings(policy)) as srv, Resolver(srv.target) as resolver:
            source = resolver.get("ip-mx1")
            assert (source.source_address, source.ehlo_domain) == ("10.0.0.5", "mx1.example.test")
            with pytest.raises(ResolverError) as caught:
                resolver.get("ip-missing")  # NXDOMAIN: no addresses, the handler returns nil
            assert caught.value.reason == "SOURCE_NOT_FOUND"
            with pytest.raises(ResolverError) as caught:
                resolver.get("fail-mx1")
            assert caught.value.reason == "DATA_SOURCE_ERROR"
            assert (
                "DNS: failed to query DNS for mx1.example.test. (A): A: SERVFAIL from "
                f"{broken.address}" in caught.value.message
            )
            with pytest.raises(ResolverError) as caught:
                resolver.get("slow-mx1")
            assert caught.value.reason == "DATA_SOURCE_TIMEOUT"
            assert (
                "DNS: failed to query DNS for mx1.example.test. (A): no answer within 0.5s"
                in caught.value.message
            )


async def _get_all(target: str, names: list[str]) -> list[BaseException | object]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.EgressResolverServiceStub(channel)
        calls = [
            stub.GetEgressSource(pb.GetEgressSourceRequest(name=n), timeout=DEADLINE) for n in names
        ]
        return list(await asyncio.gather(*calls, return_exceptions=True))


def test_twenty_lookups_wait_side_by_side(tmp_path: Path, dns_server: DnsServer) -> None:
    # Each lookup waits 0.5 s for a server that never answers: one at a time,
    # twenty would take 10 s; waiting side by side, about 0.5 s.
    with StubDnsServer(silent=True) as silent:
        policy = dns_policy(tmp_path, dns=dns_server.address, silent=silent.address)
        with InProcessServer(settings(policy)) as srv:
            started = time.monotonic()
            results = asyncio.run(_get_all(srv.target, [f"slow-h{i}" for i in range(20)]))
            elapsed = time.monotonic() - started
    assert all(isinstance(r, grpc.aio.AioRpcError) for r in results)
    assert {r.code() for r in results if isinstance(r, grpc.aio.AioRpcError)} == {
        grpc.StatusCode.DEADLINE_EXCEEDED
    }
    assert len(silent.queries) == 20
    assert elapsed < 5.0, elapsed


def test_dns_servers_setting_is_the_default_resolver(tmp_path: Path, dns_server: DnsServer) -> None:
    policy = dns_policy(tmp_path)
    with (
        InProcessServer(settings(policy, dns_servers=[dns_server.address])) as srv,
        Resolver(srv.target) as resolver,
    ):
        assert resolver.get("default-mx1").source_address == "10.0.0.5"
