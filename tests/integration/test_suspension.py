"""Host-wide suspension through a real sidecar: ReportSourceFailure, the rules
(Immediate, Threshold), the stream's hello and events, the pool answer,
Explain and `resolve --explain`, Invalidate, the metrics, the log, and the
requests refused (docs/clients/connect.md, "Reporting and suspension")."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import grpc
import pytest

from egress_client import ResolverError
from egress_resolver.ops.settings import Settings
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc
from support import DEADLINE, FakeClock, InProcessServer, ServerProcess, fixture, scrape, watch

POLICY = fixture("source_health.lua")
UNPLUMBED = pb.FAILURE_CLASS_SOURCE_UNPLUMBED
PROXY = pb.FAILURE_CLASS_PROXY_UNHEALTHY
CONNECT = pb.FAILURE_CLASS_CONNECT_FAILED
BIND_FAILED = (
    "source unplumbed: bind 192.0.2.1:0 failed: [Errno 99] Cannot assign requested address"
)
Stub = pb_grpc.EgressResolverServiceStub


@contextlib.contextmanager
def sidecar(clock: FakeClock) -> Iterator[tuple[InProcessServer, Stub]]:
    """The source_health policy in an in-process sidecar with metrics, on `clock`."""
    config = Settings(policy=POLICY, listen=["127.0.0.1:0"], metrics="127.0.0.1:0")
    with InProcessServer(config, clock) as srv, grpc.insecure_channel(srv.target) as channel:
        yield srv, pb_grpc.EgressResolverServiceStub(channel)


def report(
    stub: Stub, name: str, failure_class: int, address: str = "192.0.2.1", message: str = ""
) -> pb.ReportSourceFailureResponse:
    request = pb.ReportSourceFailureRequest(
        name=name,
        failure_class=failure_class,  # type: ignore[arg-type]
        address=address,
        message=message,
    )
    return stub.ReportSourceFailure(request, timeout=DEADLINE)


def explain(stub: Stub, name: str) -> pb.ExplainEgressSourceResponse:
    return stub.ExplainEgressSource(pb.ExplainEgressSourceRequest(name=name), timeout=DEADLINE)


def pool(stub: Stub) -> pb.GetEgressPoolResponse:
    return stub.GetEgressPool(pb.GetEgressPoolRequest(name="pool-1"), timeout=DEADLINE)


def metrics(srv: InProcessServer) -> dict[str, float]:
    """The source-health samples, as `name{label=value,...}` → value, without the
    `egress_resolver_` in front of every name."""
    assert srv.app.metrics_address is not None
    return {
        name.removeprefix("egress_resolver_")
        + "{"
        + ",".join(f"{k}={v}" for k, v in labels)
        + "}": value
        for (name, labels), value in scrape(srv.app.metrics_address).items()
        if name.startswith(("egress_resolver_source_health", "egress_resolver_source_failures"))
        and not name.endswith("_created")
    }


def marker(stub: Stub, name: str) -> int:
    """Invalidate pool `name` (nothing cached): an event that marks a place in the stream."""
    request = pb.InvalidateRequest(pool_names=[name])
    return stub.Invalidate(request, timeout=DEADLINE).sequence


def test_an_immediate_rule_suspends_at_once_and_every_view_shows_it() -> None:
    clock = FakeClock()
    with sidecar(clock) as (srv, stub):
        channel, stream = watch(srv.target)
        with channel:
            hello = next(stream)
            assert list(hello.suspended) == []
            before = time.time()
            suspension = report(stub, "unplumbed", UNPLUMBED, "192.0.2.1", BIND_FAILED).suspension
            after = time.time()
            assert (suspension.name, suspension.failure_class) == ("unplumbed", UNPLUMBED)
            assert suspension.reason == BIND_FAILED  # it names the address already
            until = suspension.until.ToNanoseconds() / 1e9
            assert before + 30 - 0.01 <= until <= after + 30 + 0.01

            event = next(stream)
            assert list(event.suspended) == [suspension]
            assert (event.sequence, event.all, list(event.names)) == (hello.sequence + 1, False, [])

            answer = pool(stub)
            assert list(answer.suspensions) == [suspension]
            assert [e.name for e in answer.pool.entries] == ["unplumbed", "proxied", "plain"]
            shown = explain(stub, "unplumbed")
            assert shown.suspension == suspension
            assert shown.source.source_address == "192.0.2.1"
            assert not explain(stub, "plain").HasField("suspension")

            # Another client's hello, and a client that comes back with what it held.
            other, fresh = watch(srv.target)
            with other:
                assert list(next(fresh).suspended) == [suspension]
            back = stub.WatchInvalidations(
                pb.WatchInvalidationsRequest(
                    revision=hello.revision, instance=hello.instance, sequence=hello.sequence
                ),
                timeout=DEADLINE,
            )
            replayed = next(back)
            assert (replayed.all, list(replayed.names)) == (False, [])
            assert list(replayed.suspended) == [suspension]
            back.cancel()

            clock.advance(20)
            again = report(stub, "unplumbed", UNPLUMBED, "192.0.2.1", "once more").suspension
            assert again == suspension  # not extended, not replaced
            assert metrics(srv) == {
                "source_failures_total{class=SOURCE_UNPLUMBED}": 2,
                "source_failures_total{class=PROXY_UNHEALTHY}": 0,
                "source_failures_total{class=CONNECT_FAILED}": 0,
                "source_health_suspensions_total{class=SOURCE_UNPLUMBED}": 1,
                "source_health_suspensions_total{class=PROXY_UNHEALTHY}": 0,
                "source_health_suspended{class=SOURCE_UNPLUMBED,source=unplumbed}": 1,
            }

            clock.advance(10)  # 30 s after it began: over, before the timer says so
            assert not explain(stub, "unplumbed").HasField("suspension")
            assert list(pool(stub).suspensions) == []
            assert not report(stub, "plain", CONNECT, "127.0.0.9:25").HasField("suspension")
            ended = next(stream)  # the next event: the report above added none
            assert (list(ended.resumed), list(ended.suspended)) == (["unplumbed"], [])
            assert ended.sequence == event.sequence + 1
        got = metrics(srv)
        assert "source_health_suspended{class=SOURCE_UNPLUMBED,source=unplumbed}" not in got
        assert got["source_health_suspensions_total{class=SOURCE_UNPLUMBED}"] == 1
        assert got["source_failures_total{class=CONNECT_FAILED}"] == 1


def test_a_threshold_rule_counts_the_reports_of_its_class_within_its_period() -> None:
    clock = FakeClock()
    with sidecar(clock) as (srv, stub):
        for _ in range(5):  # `proxied` has no suspend_when_unplumbed
            assert not report(stub, "proxied", UNPLUMBED).HasField("suspension")
        proxy = "127.0.0.1:9"
        assert not report(stub, "proxied", PROXY, proxy, "connection refused").HasField(
            "suspension"
        )
        clock.advance(100)
        assert not report(stub, "proxied", PROXY, proxy, "refused").HasField("suspension")
        clock.advance(250)  # the first report is 350 s old: out of the 5 minutes
        assert not report(stub, "proxied", PROXY, proxy, "refused").HasField("suspension")
        clock.advance(10)
        fired = report(stub, "proxied", PROXY, proxy, "connection refused").suspension
        assert (fired.name, fired.failure_class) == ("proxied", PROXY)
        assert fired.reason == "127.0.0.1:9: connection refused"
        assert fired.until.ToNanoseconds() / 1e9 == pytest.approx(time.time() + 600, abs=5)
        assert explain(stub, "proxied").suspension == fired
        got = metrics(srv)
        assert got["source_failures_total{class=PROXY_UNHEALTHY}"] == 4
        assert got["source_failures_total{class=SOURCE_UNPLUMBED}"] == 5
        assert got["source_health_suspensions_total{class=PROXY_UNHEALTHY}"] == 1
        assert got["source_health_suspended{class=PROXY_UNHEALTHY,source=proxied}"] == 1


def test_a_source_without_a_rule_never_suspends() -> None:
    with sidecar(FakeClock()) as (srv, stub):
        channel, stream = watch(srv.target)
        with channel:
            hello = next(stream)
            for failure_class in (UNPLUMBED, PROXY, CONNECT):
                for _ in range(20):
                    answer = report(stub, "plain", failure_class, "127.0.0.3", "failed")
                    assert not answer.HasField("suspension")
            # CONNECT_FAILED never suspends, whatever the source's rules.
            for _ in range(5):
                assert not report(stub, "unplumbed", CONNECT, "192.0.2.1").HasField("suspension")
            sequence = marker(stub, "mark")
            following = next(stream)
            assert (following.sequence, list(following.pool_names)) == (
                hello.sequence + 1,
                ["mark"],
            )
            assert sequence == following.sequence
        assert list(pool(stub).suspensions) == []
        got = metrics(srv)
        assert got["source_failures_total{class=CONNECT_FAILED}"] == 25
        assert got["source_failures_total{class=SOURCE_UNPLUMBED}"] == 20
        assert got["source_health_suspensions_total{class=SOURCE_UNPLUMBED}"] == 0
        assert not any("health_suspended" in key for key in got)


def test_invalidate_ends_a_suspension_and_announces_it() -> None:
    with sidecar(FakeClock()) as (srv, stub):
        channel, stream = watch(srv.target)
        with channel:
            next(stream)
            report(stub, "unplumbed", UNPLUMBED, "192.0.2.1", BIND_FAILED)
            for _ in range(3):
                report(stub, "proxied", PROXY, "127.0.0.1:9", "refused")
            assert [s.name for s in pool(stub).suspensions] == ["proxied", "unplumbed"]
            assert [len(next(stream).suspended) for _ in range(2)] == [1, 1]

            done = subprocess.run(
                [sys.executable, "-m", "egress_resolver", "invalidate",
                 "--target", srv.target, "unplumbed"],
                capture_output=True, text=True, timeout=DEADLINE, check=True,
            )  # fmt: skip
            event = next(stream)
            assert json.loads(done.stdout)["sequence"] == event.sequence
            assert (list(event.names), list(event.resumed)) == (["unplumbed"], ["unplumbed"])
            assert not explain(stub, "unplumbed").HasField("suspension")
            assert [s.name for s in pool(stub).suspensions] == ["proxied"]
            # Reported again, it is suspended again: the rule is Immediate.
            assert report(stub, "unplumbed", UNPLUMBED).HasField("suspension")
            assert [s.name for s in next(stream).suspended] == ["unplumbed"]

            stub.Invalidate(pb.InvalidateRequest(all=True), timeout=DEADLINE)
            everything = next(stream)
            assert everything.all
            assert list(everything.resumed) == ["proxied", "unplumbed"]
            assert list(pool(stub).suspensions) == []
        assert not any("health_suspended" in key for key in metrics(srv))


def test_resolve_explain_prints_the_suspension() -> None:
    with sidecar(FakeClock()) as (srv, stub):
        suspension = report(stub, "unplumbed", UNPLUMBED, "192.0.2.1", BIND_FAILED).suspension
        out = subprocess.run(
            [sys.executable, "-m", "egress_resolver", "resolve", "--explain",
             "--target", srv.target, "unplumbed", "plain"],
            capture_output=True, text=True, timeout=DEADLINE, check=True,
        )  # fmt: skip
    shown, plain = (json.loads(line) for line in out.stdout.splitlines())
    assert shown["suspension"] == {
        "name": "unplumbed",
        "failure_class": "FAILURE_CLASS_SOURCE_UNPLUMBED",
        "until": suspension.until.ToJsonString(),
        "reason": BIND_FAILED,
    }
    assert "suspension" not in plain


def refused(call: Callable[[], object]) -> ResolverError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return ResolverError.from_rpc_error(caught.value)


def test_bad_reports_are_refused_with_precise_statuses() -> None:
    with sidecar(FakeClock()) as (srv, stub):
        cases: list[tuple[str, int, grpc.StatusCode, str, str]] = [
            ("plain", pb.FAILURE_CLASS_UNSPECIFIED, grpc.StatusCode.INVALID_ARGUMENT,
             "INVALID_REQUEST", "give a failure_class: FAILURE_CLASS_SOURCE_UNPLUMBED, "
             "FAILURE_CLASS_PROXY_UNHEALTHY or FAILURE_CLASS_CONNECT_FAILED "
             "(FAILURE_CLASS_UNSPECIFIED is not a failure)"),
            ("plain", 9, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST",
             "failure_class 9 is unknown; expected FAILURE_CLASS_SOURCE_UNPLUMBED, "
             "FAILURE_CLASS_PROXY_UNHEALTHY or FAILURE_CLASS_CONNECT_FAILED"),
            # The name is checked first, as GetEgressSource checks it.
            ("", pb.FAILURE_CLASS_UNSPECIFIED, grpc.StatusCode.INVALID_ARGUMENT, "EMPTY_NAME",
             "name must not be empty"),
            ("x" * 1025, UNPLUMBED, grpc.StatusCode.INVALID_ARGUMENT, "NAME_TOO_LONG",
             "name is 1025 bytes long; the limit is 1024"),
            ("a\nb", UNPLUMBED, grpc.StatusCode.INVALID_ARGUMENT, "NAME_HAS_CONTROL_CHARACTERS",
             "name contains the control character U+000A at position 1"),
            # A name that does not resolve: that name's error.
            ("nobody", UNPLUMBED, grpc.StatusCode.NOT_FOUND, "SOURCE_NOT_FOUND", ""),
            ("broken", PROXY, grpc.StatusCode.FAILED_PRECONDITION, "HANDLER_ERROR", ""),
        ]  # fmt: skip
        for name, failure_class, code, reason, message in cases:
            err = refused(lambda: report(stub, name, failure_class))  # noqa: B023
            assert (err.code, err.reason) == (code, reason), name
            if message:
                assert err.message == message
            else:
                plain = refused(  # exactly what GetEgressSource says of it
                    lambda: stub.GetEgressSource(
                        pb.GetEgressSourceRequest(name=name),  # noqa: B023
                        timeout=DEADLINE,
                    )
                )
                assert (plain.code, plain.reason, plain.message) == (code, reason, err.message)
        got = metrics(srv)
        assert sum(v for k, v in got.items() if "failures_total" in k) == 0


def test_a_suspension_ends_by_itself_in_a_sidecar_process() -> None:
    args = ("--policy", str(POLICY), "--listen", "127.0.0.1:0", "--watch-interval", "0")
    with ServerProcess(*args) as server:
        server.wait_for_event("policy loaded")
        channel, stream = watch(server.target)
        with channel, grpc.insecure_channel(server.target) as calls:
            next(stream)
            suspension = report(Stub(calls), "quick", UNPLUMBED, "192.0.2.2", "bind failed")
            until = suspension.suspension.until.ToNanoseconds() / 1e9
            assert [s.name for s in next(stream).suspended] == ["quick"]
            ended = next(stream)  # the sidecar's timer, 1 s later
            assert list(ended.resumed) == ["quick"]
            assert time.time() >= until - 0.05
        suspended = server.wait_for_event("source suspended")
        assert suspended["level"] == "warning"
        assert (suspended["source"], suspended["failure_class"]) == ("quick", "SOURCE_UNPLUMBED")
        assert (suspended["seconds"], suspended["reason"]) == (1.0, "192.0.2.2: bind failed")
        assert str(suspended["until"]).endswith("Z")
        resumed = server.wait_for_event("source resumed")
        assert (resumed["source"], resumed["why"]) == ("quick", "expired")
