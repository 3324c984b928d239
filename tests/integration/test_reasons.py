"""The reasons INVALID_REQUEST, DATA_SOURCE_TIMEOUT, DEADLINE_EXCEEDED and SHUTTING_DOWN,
produced by a real `egress-resolver serve` process and seen as a client sees them:
the gRPC status code, the ErrorInfo reason and the message (docs/errors.md)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from datasources import HeldHttpServer, silent_port

from egress_client import Resolver, ResolverError
from kumo.egress.v1 import resolver_service_pb2 as pb
from support import DEADLINE, ServerProcess, fixture, lua_chunk_name, until, watch

POLICY = fixture("slow_data_sources.lua")
SERVICE = "/kumo.egress.v1.EgressResolverService/"
SHUTTING_DOWN = "the sidecar is shutting down; retry (on another instance)"


@contextlib.contextmanager
def serve(*extra: str, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """The slow-data-sources policy in a sidecar process, once it is loaded."""
    args = ("--policy", str(POLICY), "--listen", "127.0.0.1:0", "--watch-interval", "0")
    with ServerProcess(*args, "--handler-timeout", "60s", *extra, env=env) as server:
        server.wait_for_event("policy loaded")
        yield server


def failure(call: Callable[[], object]) -> ResolverError:
    """The error `call` fails with, as the client library reads it."""
    with pytest.raises(ResolverError) as caught:
        call()
    return caught.value


def raw_failure(call: Callable[[], object]) -> ResolverError:
    """The error a raw gRPC `call` fails with, with its ErrorInfo reason."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return ResolverError.from_rpc_error(caught.value)


UNARY_METHODS = [
    "GetEgressSource",
    "BatchGetEgressSources",
    "GetEgressPool",
    "Invalidate",
    "ExplainEgressSource",
    "ReportSourceFailure",
]


def test_a_body_that_is_not_the_methods_message_is_invalid_request() -> None:
    garbage = b"\xff\xfe not protobuf"
    with serve() as server, grpc.insecure_channel(server.target) as channel:
        for method in UNARY_METHODS:
            unary: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                SERVICE + method
            )
            err = raw_failure(lambda: unary(garbage, timeout=DEADLINE))  # noqa: B023
            assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
            assert err.message.startswith(f"the request body is not a valid {method} request: ")
            assert f"kumo.egress.v1.{method}Request" in err.message  # the parser's own words
        stream: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
            SERVICE + "WatchInvalidations"
        )
        err = raw_failure(lambda: next(iter(stream(garbage, timeout=DEADLINE))))
        assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
        assert err.message.startswith(
            "the request body is not a valid WatchInvalidations request: "
        )
        # The same methods with their own message are answered on the same channel.
        get: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            SERVICE + "GetEgressSource"
        )
        body = get(pb.GetEgressSourceRequest(name="ip-1").SerializeToString(), timeout=DEADLINE)
        assert pb.GetEgressSourceResponse.FromString(body).source.ehlo_domain == "direct.example"


@pytest.mark.parametrize("kind", ["http", "redis"])
def test_a_data_source_past_its_own_timeout_is_data_source_timeout(kind: str) -> None:
    with silent_port() as port:
        env = {
            "HTTP_URL": f"http://127.0.0.1:{port}",
            "HTTP_TIMEOUT": "300ms",
            "REDIS_URL": f"redis://127.0.0.1:{port}/",
        }
        with serve(env=env) as server, Resolver(server.target, timeout=DEADLINE) as resolver:
            name = f"{kind}-1"
            err = failure(lambda: resolver.get(name))
            assert (err.code, err.reason) == (
                grpc.StatusCode.DEADLINE_EXCEEDED,
                "DATA_SOURCE_TIMEOUT",
            )
            assert err.message.startswith(f"get_egress_source '{name}': ")
            if kind == "http":
                assert err.message.endswith(": http: no answer within 0.3s")
            else:  # the policy's line, then redis-py's words
                assert err.message.startswith(
                    f"get_egress_source '{name}': {lua_chunk_name(POLICY)}:16: redis: "
                )
                assert f"Timeout reading from 127.0.0.1:{port}" in err.message
            # The handler's own budget (60 s) is not what ran out, and other names resolve.
            assert resolver.get("ip-1").ehlo_domain == "direct.example"


def test_an_http_timeout_names_the_policys_line() -> None:
    with silent_port() as port:
        env = {"HTTP_URL": f"http://127.0.0.1:{port}", "HTTP_TIMEOUT": "300ms"}
        with serve(env=env) as server, Resolver(server.target, timeout=DEADLINE) as resolver:
            err = failure(lambda: resolver.get("http-1"))
            assert err.message == (
                f"get_egress_source 'http-1': {lua_chunk_name(POLICY)}:13: "
                "http: no answer within 0.3s"
            )


def test_the_callers_deadline_passing_while_a_data_source_is_slow_is_deadline_exceeded() -> None:
    with HeldHttpServer() as held:
        env = {"HTTP_URL": held.url}  # the request's own timeout: 30 s
        with serve(env=env) as server, Resolver(server.target) as resolver:
            # Several calls, each its own miss: the reason must reach the caller every
            # time, not only when the sidecar's answer wins a race with the caller's timer.
            for i in range(3):
                name = f"http-{i}"
                err = failure(lambda: resolver.get(name, timeout=2.0))  # noqa: B023
                assert (err.code, err.reason, err.message) == (
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    "DEADLINE_EXCEEDED",
                    f"the caller's deadline passed while '{name}' was being resolved",
                )
            held.wait_for_requests(3)  # every load is still waiting on the data source
            held.release()
            # The abandoned loads go on for the cache: the answer is there afterwards.
            assert resolver.get("http-0", timeout=DEADLINE).ehlo_domain == "held.example"


def test_a_batch_answers_its_quick_names_and_deadline_exceeded_for_the_slow_one() -> None:
    with (
        HeldHttpServer() as held,
        serve(env={"HTTP_URL": held.url}) as server,
        Resolver(server.target) as resolver,
    ):
        quick, slow = resolver.get_many(["ip-1", "http-1"], timeout=2.0)
        assert not isinstance(quick, ResolverError)
        assert quick.ehlo_domain == "direct.example"
        assert isinstance(slow, ResolverError)
        assert (slow.code, slow.reason, slow.message) == (
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "DEADLINE_EXCEEDED",
            "the caller's deadline passed while 'http-1' was being resolved",
        )


def test_a_call_arriving_during_the_drain_is_shutting_down(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with (
        serve("--shutdown-grace", "60s", env={"FIFO": str(fifo)}) as server,
        Resolver(server.target, timeout=DEADLINE) as resolver,
    ):
        assert resolver.get("ip-1").name == "ip-1"  # cached: later calls of it are hits
        answered: list[str] = []
        caller = threading.Thread(target=lambda: answered.append(resolver.get("wait-1").name))
        caller.start()
        # Opening the FIFO for writing returns once the handler has opened it for
        # reading: from then on wait-1 is in flight, and holds the drain open.
        release = fifo.open("w")
        try:
            server.signal(signal.SIGTERM)
            refusals: list[ResolverError] = []

            def refused() -> bool:
                try:
                    resolver.get("ip-1")  # a hit: never waits behind wait-1
                except ResolverError as err:
                    refusals.append(err)
                    return True
                return False

            until(refused, "a new call is refused")
            err = refusals[0]
            assert (err.code, err.reason, err.message) == (
                grpc.StatusCode.UNAVAILABLE,
                "SHUTTING_DOWN",
                SHUTTING_DOWN,
            )
            err = failure(lambda: resolver.get("ip-2"))  # misses alike
            assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "SHUTTING_DOWN")
            channel, stream = watch(server.target)  # a new stream too
            try:
                err = raw_failure(lambda: next(stream))
            finally:
                channel.close()
            assert (err.code, err.reason, err.message) == (
                grpc.StatusCode.UNAVAILABLE,
                "SHUTTING_DOWN",
                SHUTTING_DOWN,
            )
            assert server.proc is not None
            assert server.proc.poll() is None  # still draining: wait-1 is in flight
        finally:
            release.write("go\n")
            release.close()
        caller.join(DEADLINE)
        assert answered == ["wait-1"]  # the call in flight was answered
        assert server.wait() == 0
