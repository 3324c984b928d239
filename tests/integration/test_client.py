"""The Python client library against a real server process (tests/fixtures/clients.lua)."""

import asyncio
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.empty_pb2 import Empty

from egress_client import AsyncResolver, Resolver, ResolverError
from kumo.egress.v1.egress_source_pb2 import EgressSource, KeySource, SuspendOnFailure
from support import ServerProcess, fixture

FULL = EgressSource(
    name="full",
    source_address="10.0.0.1",
    ehlo_domain="mta1.examplecorp.com",
    remote_port=2525,
    ha_proxy_server="10.0.0.9:5000",
    ha_proxy_source_address="10.0.0.2",
    socks5_proxy_server="[2001:db8::1]:1080",
    socks5_proxy_source_address="2001:db8::2",
    socks5_proxy_username="mta",
    socks5_proxy_password=KeySource(key_data="hunter2"),
    suspend_when_unplumbed=SuspendOnFailure(immediate=Empty(), duration=Duration(seconds=300)),
    suspend_when_proxy_unhealthy=SuspendOnFailure(
        threshold="3/300s", duration=Duration(seconds=600)
    ),
    ttl=Duration(seconds=90),
)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess("--policy", str(fixture("clients.lua")), "--listen", "127.0.0.1:0") as srv:
        srv.wait_for_event("policy loaded")
        yield srv


def test_full_definition(server: ServerProcess) -> None:
    with Resolver(server.target) as resolver:
        assert resolver.get("full") == FULL


def test_not_found_and_failed_precondition(server: ServerProcess) -> None:
    with Resolver(server.target) as resolver:
        with pytest.raises(ResolverError) as missing:
            resolver.get("missing")
        assert (missing.value.code, missing.value.reason) == (
            grpc.StatusCode.NOT_FOUND,
            "SOURCE_NOT_FOUND",
        )
        assert missing.value.name == "missing"
        with pytest.raises(ResolverError) as broken:
            resolver.get("broken")
        assert (broken.value.code, broken.value.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "HANDLER_ERROR",
        )
        assert broken.value.message.startswith("get_egress_source 'broken': ")
        assert "broken on purpose" in str(broken.value)


def test_get_many_and_async(server: ServerProcess) -> None:
    with Resolver(server.target) as resolver:
        results = resolver.get_many(["missing", "full", "broken"])
    assert isinstance(results[0], ResolverError)
    assert results[0].reason == "SOURCE_NOT_FOUND"
    assert results[1] == FULL
    assert isinstance(results[2], ResolverError)
    assert results[2].code is grpc.StatusCode.FAILED_PRECONDITION

    async def run() -> list[object]:
        async with AsyncResolver(server.target) as resolver:
            return [await resolver.get("full"), *(await resolver.get_many(["missing"]))]

    full, missing = asyncio.run(run())
    assert full == FULL
    assert isinstance(missing, ResolverError)


def test_unreachable_server_is_unavailable_without_reason() -> None:
    with Resolver("127.0.0.1:1", timeout=5) as resolver, pytest.raises(ResolverError) as err:
        resolver.get("full")
    assert err.value.code is grpc.StatusCode.UNAVAILABLE
    assert err.value.reason is None
