"""The gRPC service on real sockets: seed examples, the error table, cache, bad input."""

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2

from egress_client import Resolver, ResolverError
from egress_resolver.ops.settings import Settings
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc
from support import DEADLINE, FakeClock, InProcessServer, fixture, health_status, lua_chunk_name


def settings(policy: str, **kw: object) -> Settings:
    return Settings(policy=fixture(policy), listen=["127.0.0.1:0"], **kw)  # type: ignore[arg-type]


@pytest.fixture
def errors_server() -> Iterator[InProcessServer]:
    # The budget leaves room to fill 32 MiB on a loaded machine (the "memory" row).
    with InProcessServer(settings("errors.lua", handler_timeout=3.0, lua_memory_mib=32)) as srv:
        yield srv


def error_of(resolver: Resolver, name: str) -> ResolverError:
    with pytest.raises(ResolverError) as err:
        resolver.get(name)
    return err.value


@pytest.mark.parametrize(
    ("policy", "name", "expected"),
    [
        ("seed_name_only.lua", "any-name", {"name": "any-name"}),
        ("seed_source_address.lua", "ip-1", {"name": "ip-1", "source_address": "10.0.0.1"}),
        (
            "seed_ehlo_domain.lua",
            "ip-1",
            {"name": "ip-1", "source_address": "10.0.0.1", "ehlo_domain": "mta1.examplecorp.com"},
        ),
        (
            "seed_ha_proxy.lua",
            "ip-1",
            {
                "name": "ip-1",
                "ha_proxy_source_address": "10.0.0.1",
                "ha_proxy_server": "10.0.0.1:5000",
                "ehlo_domain": "mta1.examplecorp.com",
            },
        ),
    ],
)
def test_seed_examples(policy: str, name: str, expected: dict[str, str]) -> None:
    with InProcessServer(settings(policy)) as srv, Resolver(srv.target) as resolver:
        source = resolver.get(name)
    fields = {f.name: v for f, v in source.ListFields() if f.name != "ttl"}
    assert fields == expected
    assert source.ttl == Duration(seconds=60)


def test_seed_other_names_fail_with_the_policys_words() -> None:
    with InProcessServer(settings("seed_source_address.lua")) as srv, Resolver(srv.target) as r:
        err = error_of(r, "ip-2")
        assert err.code is grpc.StatusCode.FAILED_PRECONDITION
        assert err.reason == "HANDLER_ERROR"
        assert err.message == (
            f"get_egress_source 'ip-2': {lua_chunk_name(fixture('seed_source_address.lua'))}:10: "
            "you need to do something for other source names"
        )
        assert r.get("ip-1").source_address == "10.0.0.1"


# Every row of DESIGN section 6 that a policy or a request can cause.
ERROR_TABLE = [
    ("", grpc.StatusCode.INVALID_ARGUMENT, "EMPTY_NAME"),
    ("x" * 2000, grpc.StatusCode.INVALID_ARGUMENT, "NAME_TOO_LONG"),
    ("ip\n1", grpc.StatusCode.INVALID_ARGUMENT, "NAME_HAS_CONTROL_CHARACTERS"),
    ("ip\x001", grpc.StatusCode.INVALID_ARGUMENT, "NAME_HAS_CONTROL_CHARACTERS"),
    ("nil", grpc.StatusCode.NOT_FOUND, "SOURCE_NOT_FOUND"),
    ("nothing", grpc.StatusCode.NOT_FOUND, "SOURCE_NOT_FOUND"),
    ("raise", grpc.StatusCode.FAILED_PRECONDITION, "HANDLER_ERROR"),
    ("runtime", grpc.StatusCode.FAILED_PRECONDITION, "HANDLER_ERROR"),
    ("string", grpc.StatusCode.FAILED_PRECONDITION, "INVALID_RETURN_TYPE"),
    ("invalid", grpc.StatusCode.FAILED_PRECONDITION, "INVALID_DEFINITION"),
    ("unknown-key", grpc.StatusCode.FAILED_PRECONDITION, "INVALID_DEFINITION"),
    ("loop", grpc.StatusCode.DEADLINE_EXCEEDED, "HANDLER_TIMEOUT"),
]


@pytest.mark.parametrize(("name", "code", "reason"), ERROR_TABLE)
def test_error_table(
    errors_server: InProcessServer, name: str, code: grpc.StatusCode, reason: str
) -> None:
    with Resolver(errors_server.target, timeout=DEADLINE) as resolver:
        err = error_of(resolver, name)
        assert (err.code, err.reason) == (code, reason)
        if code is grpc.StatusCode.FAILED_PRECONDITION:
            assert err.message.startswith(f"get_egress_source '{name}': ")
        # the failure takes nothing else down
        assert resolver.get("ok").source_address == "10.0.0.1"


def test_lua_memory_cap() -> None:
    """The last row of the table, on a server whose time budget cannot run out first:
    filling 32 MiB can take longer than errors_server's 0.3 s on a loaded machine."""
    config = settings("errors.lua", handler_timeout=DEADLINE, lua_memory_mib=32)
    with InProcessServer(config) as srv, Resolver(srv.target, timeout=DEADLINE) as resolver:
        err = error_of(resolver, "memory")
        assert (err.code, err.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "LUA_MEMORY_LIMIT")
        assert resolver.get("ok").source_address == "10.0.0.1"


def test_a_policy_without_a_source_handler_does_not_load() -> None:
    with InProcessServer(settings("no_handler.lua")) as srv, Resolver(srv.target) as resolver:
        err = error_of(resolver, "ip-1")
        assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "POLICY_NOT_LOADED")
        assert "registers no get_egress_source handler" in err.message
        assert health_status(srv.target) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_no_valid_policy_is_unavailable() -> None:
    with InProcessServer(settings("syntax_error.lua")) as srv, Resolver(srv.target) as resolver:
        err = error_of(resolver, "ip-1")
        assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "POLICY_NOT_LOADED")
        assert "syntax_error.lua:4:" in err.message


def test_too_many_pending_misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    monkeypatch.setenv("FIFO", str(fifo))
    with (
        InProcessServer(settings("counter.lua", max_pending_misses=1)) as srv,
        Resolver(srv.target, timeout=DEADLINE) as resolver,
    ):
        blocked = threading.Thread(target=resolver.get, args=("wait-1",))
        blocked.start()
        srv.call(_until(lambda: srv.app.cache.stats().loads == 1))
        err = error_of(resolver, "other")
        assert (err.code, err.reason) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "TOO_MANY_PENDING_MISSES",
        )
        fifo.write_text("go\n")
        blocked.join(DEADLINE)
        assert resolver.get("other").name == "other"


def test_caller_deadline_while_handler_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    monkeypatch.setenv("FIFO", str(fifo))
    with (
        InProcessServer(settings("counter.lua", handler_timeout=DEADLINE)) as srv,
        Resolver(srv.target) as resolver,
    ):
        with pytest.raises(ResolverError) as err:
            resolver.get("wait-1", timeout=0.2)
        assert err.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
        assert resolver.get("unspecified").name == "unspecified"
        fifo.write_text("go\n")
        # the abandoned load finished for the cache: this is a hit (call-1)
        srv.call(_until(lambda: srv.app.cache.stats().entries >= 1))
        assert resolver.get("wait-1", timeout=DEADLINE).ehlo_domain == "call-1"


def test_cache_hit_and_refetch_after_expiry() -> None:
    clock = FakeClock()
    with InProcessServer(settings("counter.lua"), clock) as srv, Resolver(srv.target) as resolver:
        assert resolver.get("short-a").ehlo_domain == "call-1"
        assert resolver.get("short-a").ehlo_domain == "call-1"  # hit: the handler did not run
        assert resolver.get("short-a").ttl == Duration(seconds=10)
        clock.advance(10.5)
        assert resolver.get("short-a").ehlo_domain == "call-2"  # expired: refetched
        assert resolver.get("zero-b").ehlo_domain == "call-3"  # ttl 0: never cached
        assert resolver.get("zero-b").ehlo_domain == "call-4"


def test_not_found_is_cached_for_negative_ttl() -> None:
    clock = FakeClock()
    with (
        InProcessServer(settings("counter.lua", negative_ttl=30.0), clock) as srv,
        Resolver(srv.target) as resolver,
    ):
        for _ in range(3):
            assert error_of(resolver, "gone-x").code is grpc.StatusCode.NOT_FOUND
        assert resolver.get("probe").ehlo_domain == "call-2"  # gone-x ran once
        clock.advance(31)
        assert error_of(resolver, "gone-x").code is grpc.StatusCode.NOT_FOUND
        assert resolver.get("probe2").ehlo_domain == "call-4"


def test_batch_results_in_order(errors_server: InProcessServer) -> None:
    with Resolver(errors_server.target, timeout=DEADLINE) as resolver:
        results = resolver.get_many(["ok", "nil", "", "raise", "ok"])
    assert [type(r).__name__ for r in results] == [
        "EgressSource",
        "ResolverError",
        "ResolverError",
        "ResolverError",
        "EgressSource",
    ]
    reasons = [r.reason for r in results if isinstance(r, ResolverError)]
    assert reasons == ["SOURCE_NOT_FOUND", "EMPTY_NAME", "HANDLER_ERROR"]


def test_batch_too_large(errors_server: InProcessServer) -> None:
    with Resolver(errors_server.target) as resolver, pytest.raises(ResolverError) as err:
        resolver.get_many(["ok"] * 1001)
    assert (err.value.code, err.value.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "TOO_MANY_NAMES",
    )


def test_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "egress.sock"
    config = Settings(policy=fixture("seed_source_address.lua"), listen=[f"unix:{path}"])
    with InProcessServer(config) as srv, Resolver(f"unix:{path}") as resolver:
        assert srv.target == f"unix:{path}"
        assert resolver.get("ip-1").source_address == "10.0.0.1"
        assert path.stat().st_mode & 0o777 == 0o600


def test_ipv6_loopback() -> None:
    config = Settings(policy=fixture("seed_source_address.lua"), listen=["[::1]:0"])
    with InProcessServer(config) as srv, Resolver(srv.target) as resolver:
        assert srv.target.startswith("[::1]:")
        assert resolver.get("ip-1").source_address == "10.0.0.1"


def test_watch_invalidations_announces_reloads() -> None:
    with InProcessServer(settings("counter.lua")) as srv:
        channel = grpc.insecure_channel(srv.target)
        stream = pb_grpc.EgressResolverServiceStub(channel).WatchInvalidations(
            pb.WatchInvalidationsRequest(), timeout=DEADLINE
        )
        hello = next(stream)
        assert (hello.generation, hello.all, list(hello.names), hello.sequence) == (1, False, [], 0)
        assert hello.revision == srv.app.runner.revision
        assert hello.instance == srv.app.invalidations.instance
        assert srv.call(srv.app.reload())
        event = next(stream)  # nothing was cached, so nothing is stale
        assert (event.generation, event.all, list(event.names), event.sequence) == (2, False, [], 1)
        stream.cancel()
        channel.close()


def test_reload_invalidates_the_cache() -> None:
    with InProcessServer(settings("counter.lua")) as srv, Resolver(srv.target) as resolver:
        assert resolver.get("a").ehlo_domain == "call-1"
        assert srv.call(srv.app.reload())
        assert resolver.get("a").ehlo_domain == "call-1"  # a fresh runtime counts from 1 again
        assert srv.app.runner.generation == 2


async def _until(predicate: object) -> None:
    import asyncio

    for _ in range(int(DEADLINE / 0.01)):
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")
