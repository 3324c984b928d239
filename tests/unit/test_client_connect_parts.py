"""The pieces of the Python client's connect that need no socket (docs/clients/connect.md):
the PROXY v2 header and kumod's SOCKS5 exchange as bytes, candidate planning and
classification, the suspensions a client holds, and select skipping suspended sources."""

from __future__ import annotations

import errno
import ipaddress

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from egress_client import Options
from egress_client._connect import (
    CONNECT_FAILED,
    PROXY_UNHEALTHY,
    SOURCE_UNPLUMBED,
    ConnectFailedError,
    Tally,
    attempts,
    parse_endpoint,
    prepare,
)
from egress_client._health import Suspensions, failure_class
from egress_client._proxy import Exchange, HandshakeError, proxy_v2_header, socks5_exchange
from egress_client._selector import AllSuspendedError, PoolSelector
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1.egress_pool_pb2 import EgressPool, EgressPoolEntry
from kumo.egress.v1.egress_source_pb2 import EgressSource, KeySource, VaultKeySource
from support import FakeClock

ip = ipaddress.ip_address


def test_proxy_v2_header_ipv4_and_ipv6() -> None:
    # Written out by hand from the PROXY protocol spec (section 2.2), not from the code.
    assert proxy_v2_header(ip("10.0.0.2"), ip("192.0.2.7"), 25) == (
        b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x0a\x00\x00\x02\xc0\x00\x02\x07\x00\x00\x00\x19"
    )
    header = proxy_v2_header(ip("2001:db8::2"), ip("::1"), 2525)
    assert header[12:16] == b"\x21\x21\x00\x24"
    assert header[16:32] == bytes.fromhex("20010db8000000000000000000000002")
    assert header[32:48] == bytes(15) + b"\x01"
    assert header[48:] == b"\x00\x00\x09\xdd"
    with pytest.raises(ValueError, match="same address family"):
        proxy_v2_header(ip("10.0.0.2"), ip("::1"), 25)


def play(exchange: Exchange, replies: list[bytes]) -> list[bytes]:
    """Run a handshake against scripted replies; what it sent."""
    sent: list[bytes] = []
    step = next(exchange)
    try:
        while True:
            if isinstance(step, bytes):
                sent.append(step)
                step = exchange.send(b"")
            else:
                reply = replies.pop(0)
                assert len(reply) == step, (reply, step)
                step = exchange.send(reply)
    except StopIteration:
        assert not replies, f"unread replies: {replies}"
        return sent


OK_V4 = [b"\x05\x00\x00\x01", b"\x7f\x00\x00\x05\x00\x00"]


def test_socks5_no_auth_bind_then_connect() -> None:
    exchange = socks5_exchange(ip("127.0.0.5"), ip("127.0.0.1"), 2525)
    sent = play(exchange, [b"\x05\x00", *OK_V4, b"\x05\x00\x00\x03", b"\x04", b"host\x00\x19"])
    assert sent == [
        b"\x05\x01\x00",
        b"\x05\x02\x00\x01\x7f\x00\x00\x05\x00\x00",
        b"\x05\x01\x00\x01\x7f\x00\x00\x01\x09\xdd",
    ]


def test_socks5_username_password_and_ipv6_requests() -> None:
    key = KeySource(key_data="hunter2")
    exchange = socks5_exchange(ip("::5"), ip("::1"), 25, "mta", key)
    v6_ok = [b"\x05\x00\x00\x04", bytes(18)]
    sent = play(exchange, [b"\x05\x02", b"\x01\x00", *v6_ok, *v6_ok])
    assert sent[0] == b"\x05\x02\x00\x02"
    assert sent[1] == b"\x01\x03mta\x07hunter2"
    assert sent[2] == b"\x05\x02\x00\x04" + ip("::5").packed + b"\x00\x00"
    assert sent[3] == b"\x05\x01\x00\x04" + ip("::1").packed + b"\x00\x19"


@pytest.mark.parametrize(
    ("replies", "key", "message"),
    [
        ([b"\x05\x02", b"\x01\x01"], KeySource(key_data="x"), "username/password was incorrect"),
        ([b"\x05\x02"], KeySource(vault=VaultKeySource(vault_path="p")), "vault KeySource"),
        ([b"\x05\xff"], None, "accepted none of the offered methods"),
        ([b"\x04\x00"], None, "not a SOCKS5 server"),
        ([b"\x05\x00", b"\x05\x02\x00\x01", bytes(6)], None, "failed to bind 127.0.0.5"),
        ([b"\x05\x00", *OK_V4, b"\x05\x05\x00\x01", bytes(6)], None, "connection refused"),
    ],
)
def test_socks5_failures(replies: list[bytes], key: KeySource | None, message: str) -> None:
    exchange = socks5_exchange(ip("127.0.0.5"), ip("127.0.0.1"), 25, "u" if key else None, key)
    with pytest.raises(HandshakeError, match=message):
        play(exchange, replies)


def test_parse_endpoint() -> None:
    assert parse_endpoint("127.0.0.1:25", "to").ip == ip("127.0.0.1")
    assert parse_endpoint("[::1]:25", "to").ip == ip("::1")
    assert parse_endpoint("::1:25", "to").port == 25
    named = parse_endpoint("mx.example.com:2525", "to")
    assert (named.host, named.port, named.ip) == ("mx.example.com", 2525, None)
    for bad in ("127.0.0.1", "host:", ":25", "host:0", "host:70000", "host:x"):
        with pytest.raises(ValueError, match="is not HOST:PORT"):
            parse_endpoint(bad, "to")


def test_candidates_follow_kumods_family_rules() -> None:
    prepared = prepare(socks("px"), "mx:25")
    both = [ip("2001:db8::1"), ip("192.0.2.1")]
    [only] = attempts(prepared, both, [ip("127.0.0.1")])
    assert only.destination == (ip("192.0.2.1"), 25)
    with pytest.raises(ConnectFailedError, match="address family does not match") as mismatch:
        attempts(prepared, [ip("2001:db8::1")], [ip("127.0.0.1")])
    # Found before any connection attempt: PROXY_UNHEALTHY, not reported (as kumod).
    assert (mismatch.value.reason, mismatch.value.report) == (PROXY_UNHEALTHY, False)
    bound = prepare(socks("px", "::1"), "mx:25")
    with pytest.raises(ConnectFailedError, match="no socks5_proxy_server candidates") as none:
        attempts(bound, [ip("192.0.2.1")], [ip("127.0.0.1")])
    assert (none.value.reason, none.value.report) == (PROXY_UNHEALTHY, False)
    unknown = parse_endpoint("proxy:1080", "socks5_proxy_server")
    unresolved = prepared.resolve_failed(unknown, OSError(-2, "Name not known"), 1, proxy=True)
    assert (unresolved.reason, unresolved.report) == (PROXY_UNHEALTHY, False)
    two = attempts(prepare(socks("px"), "mx:25"), [ip("192.0.2.1")], [ip("::1"), ip("127.0.0.1")])
    assert [a.transport[0] for a in two] == [ip("::1"), ip("127.0.0.1")]
    assert prepare(EgressSource(name="d", remote_port=2525), "mx:25").destination.port == 2525
    with pytest.raises(ConnectFailedError, match="unix-path proxy") as unix:
        prepare(
            EgressSource(name="h", ha_proxy_server="/run/p", ha_proxy_source_address="::1"), "a:1"
        )
    assert (unix.value.reason, unix.value.report) == (PROXY_UNHEALTHY, False)


def socks(name: str, source_address: str | None = None) -> EgressSource:
    return EgressSource(
        name=name,
        source_address=source_address,
        socks5_proxy_server="proxy:1080",
        socks5_proxy_source_address="10.0.0.5",
    )


def test_classification() -> None:
    direct = prepare(EgressSource(name="ip-9", source_address="192.0.2.1"), "127.0.0.1:25")
    [attempt] = attempts(direct, [ip("127.0.0.1")], [])
    tally = Tally(direct)
    tally.bind_failed(attempt, OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"))
    assert tally.skip(attempt)
    unplumbed = tally.outcome()
    assert (unplumbed.reason, unplumbed.report, unplumbed.address) == (
        SOURCE_UNPLUMBED,
        True,
        "192.0.2.1",
    )
    assert unplumbed.message == (
        "source ip-9: bind 192.0.2.1:0 failed: "
        "[Errno 99] Cannot assign requested address (EADDRNOTAVAIL)"
    )
    denied = Tally(direct)
    denied.bind_failed(attempt, OSError(errno.EACCES, "Permission denied"))
    assert (denied.outcome().reason, denied.outcome().report) == (SOURCE_UNPLUMBED, False)
    refused = Tally(direct)
    refused.failed(attempt, "[Errno 111] Connection refused (ECONNREFUSED)")
    failure = refused.outcome()
    assert (failure.reason, failure.report) == (CONNECT_FAILED, False)
    error = failure.error()
    assert (error.code, error.reason, error.name) == (
        grpc.StatusCode.UNAVAILABLE,
        CONNECT_FAILED,
        "ip-9",
    )
    proxied = prepare(socks("px"), "127.0.0.1:25")
    first, second = attempts(proxied, [ip("127.0.0.1")], [ip("127.0.0.1"), ip("127.0.0.2")])
    both = Tally(proxied)
    both.failed(first, "refused")
    both.failed(second, "timeout")
    outcome = both.outcome()
    assert (outcome.reason, outcome.report, outcome.address) == (
        PROXY_UNHEALTHY,
        True,
        "127.0.0.2:1080",
    )
    assert (
        outcome.message == "source px: proxy 127.0.0.1:1080: refused; proxy 127.0.0.2:1080: timeout"
    )


def suspension(
    name: str, until: float, cls: pb.FailureClass.ValueType = pb.FAILURE_CLASS_SOURCE_UNPLUMBED
) -> pb.SourceSuspension:
    stamp = Timestamp(seconds=int(until), nanos=int((until % 1) * 1e9))
    return pb.SourceSuspension(name=name, failure_class=cls, until=stamp, reason="bind failed")


def test_suspensions_replace_add_resume_and_forget_at_until() -> None:
    clock = FakeClock(1_800_000_000.0)
    held = Suspensions(clock)
    held.add([suspension("a", clock() + 30), suspension("b", clock() + 10)])
    learned = held.learned_ns("a")
    assert held.names() == {"a", "b"}
    held.replace([suspension("a", clock() + 60), suspension("c", clock() + 60)])
    assert [s.name for s in held.active()] == ["a", "c"]
    assert held.learned_ns("a") == learned  # known before the hello: still since then
    held.resume(["c"])
    clock.advance(59.5)
    assert held.names() == {"a"}
    error = held.source_error("a")
    assert error is not None
    assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "SOURCE_SUSPENDED")
    assert "2027-01-15T08:01:00Z (in 1s) after SOURCE_UNPLUMBED: bind failed" in error.message
    clock.advance(0.5)
    assert held.names() == frozenset()
    assert held.source_error("a") is None
    assert held.wait("a", 0.01) is None


def test_failure_class_names() -> None:
    assert failure_class("PROXY_UNHEALTHY") == pb.FAILURE_CLASS_PROXY_UNHEALTHY
    assert failure_class("FAILURE_CLASS_SOURCE_UNPLUMBED") == pb.FAILURE_CLASS_SOURCE_UNPLUMBED
    assert failure_class(3) == pb.FAILURE_CLASS_CONNECT_FAILED
    for bad in ("UNSPECIFIED", "NOPE", 0, 9):
        with pytest.raises(ValueError, match="failure class"):
            failure_class(bad)


def pool(**weights: int) -> EgressPool:
    entries = [EgressPoolEntry(name=n, weight=w) for n, w in weights.items()]
    return EgressPool(name="pool-1", entries=entries)


def test_select_skips_suspended_in_the_order_kumod_keeps() -> None:
    # kumod filters the suspended entries out and runs the same weighted
    # round robin over the rest with the same index/weight state: from a fresh
    # state that is the sequence of the pool without them.
    full, without = PoolSelector(pool(one=5, two=2, three=3)), PoolSelector(pool(one=5, three=3))
    picks = [full.next(frozenset({"two"})) for _ in range(80)]
    assert picks == [without.next() for _ in range(80)]
    assert (picks.count("one"), picks.count("three")) == (50, 30)
    assert full.next(frozenset({"one", "three"})) == "two"
    with pytest.raises(AllSuspendedError):
        full.next(frozenset({"one", "two", "three"}))
    assert PoolSelector(pool(one=5, two=2, three=3)).next(frozenset({"other"})) == "two"


def test_all_suspended_says_which_resumes_first() -> None:
    clock = FakeClock(1_800_000_000.0)
    held = Suspensions(clock)
    held.add([suspension("one", clock() + 60), suspension("two", clock() + 29)])
    error = held.pool_error(pool(one=5, two=2, zero=0))
    assert (error.code, error.reason, error.name) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "POOL_SUSPENDED",
        "pool-1",
    )
    assert error.message == (
        "pool pool-1: every source is suspended; "
        "two resumes first, at 2027-01-15T08:00:29Z (in 29s)"
    )


def test_connect_timeout_option() -> None:
    assert Options.resolve({}).connect_timeout == 60.0
    assert Options.resolve({"EGRESS_CLIENT_CONNECT_TIMEOUT": "1500ms"}).connect_timeout == 1.5
    assert Options.resolve({}, connect_timeout=3.0).connect_timeout == 3.0


def test_an_answer_sent_before_a_resume_does_not_bring_it_back() -> None:
    clock = FakeClock(1_800_000_000.0)
    held = Suspensions(clock)
    held.add([suspension("a", clock() + 30), suspension("b", clock() + 30)])
    sent_at = held.epoch  # a GetEgressPool (or report) goes out now...
    held.resume(["a"])  # ...the stream says a resumed before its answer arrives
    held.replace([])  # and a new stream's hello has none: b ended too
    held.add([suspension("a", clock() + 30), suspension("b", clock() + 30)], sent_at)
    assert held.names() == frozenset()
    held.add([suspension("a", clock() + 30)], held.epoch)  # sent after the resume: taken
    held.add([suspension("b", clock() + 30)])  # the stream: always taken
    assert held.names() == {"a", "b"}
