"""SourceHealth (serving/source_health.py) and FailureWindow: the rules, the
window, the ends, with a fake clock; the timer with the event loop's own."""

from __future__ import annotations

import asyncio
import time

import pytest

from egress_resolver.definitions.suspend import SuspendOnFailure
from egress_resolver.serving.failure_window import RUNS, FailureWindow
from egress_resolver.serving.source_health import SourceHealth, Suspension, class_label, iso_time
from kumo.egress.v1 import resolver_service_pb2 as pb
from support import FakeClock

UNPLUMBED = pb.FAILURE_CLASS_SOURCE_UNPLUMBED
PROXY = pb.FAILURE_CLASS_PROXY_UNHEALTHY
CONNECT = pb.FAILURE_CLASS_CONNECT_FAILED
SECOND = 1_000_000_000
IMMEDIATE_30S = SuspendOnFailure(duration_nanos=30 * SECOND)
THREE_IN_5M = SuspendOnFailure(duration_nanos=600 * SECOND, threshold="3/300s")


class Recorder:
    """A HealthListener and an `announce` that keep what they were told."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.suspensions: list[str] = []
        self.resumptions: list[str] = []
        self.announced: list[tuple[tuple[str, ...], tuple[str, ...]]] = []

    def failure_reported(self, failure_class: int) -> None:
        self.failures.append(class_label(failure_class))

    def suspended(self, suspension: Suspension) -> None:
        self.suspensions.append(suspension.name)

    def resumed(self, suspension: Suspension) -> None:
        self.resumptions.append(suspension.name)

    def announce(self, suspended: tuple[Suspension, ...], resumed: tuple[str, ...]) -> None:
        self.announced.append((tuple(s.name for s in suspended), resumed))


def registry(clock: FakeClock, wall: FakeClock | None = None) -> tuple[SourceHealth, Recorder]:
    recorder = Recorder()
    health = SourceHealth(
        clock=clock, wall_clock=wall or FakeClock(1_800_000_000.0), listeners=(recorder,)
    )
    health.announce = recorder.announce
    return health, recorder


def test_immediate_suspends_at_once_for_the_duration() -> None:
    clock, wall = FakeClock(), FakeClock(1_800_000_000.0)
    health, seen = registry(clock, wall)
    suspension = health.report("ip-9", UNPLUMBED, IMMEDIATE_30S, "bind 192.0.2.1:0 failed")
    assert suspension is not None
    assert (suspension.name, suspension.failure_class) == ("ip-9", UNPLUMBED)
    assert (suspension.until, suspension.reason) == (1_800_000_030.0, "bind 192.0.2.1:0 failed")
    assert seen.announced == [(("ip-9",), ())]
    assert (seen.failures, seen.suspensions) == (["SOURCE_UNPLUMBED"], ["ip-9"])
    assert health.get("ip-9") == suspension
    assert health.in_force() == (suspension,)
    message = suspension.message()
    assert message.until.seconds == 1_800_000_030
    assert message.failure_class == UNPLUMBED


def test_a_report_while_suspended_does_not_extend_or_replace_it() -> None:
    clock = FakeClock()
    health, seen = registry(clock)
    first = health.report("ip-9", UNPLUMBED, IMMEDIATE_30S, "first")
    clock.advance(20)
    again = health.report("ip-9", UNPLUMBED, IMMEDIATE_30S, "second")
    other = health.report("ip-9", PROXY, IMMEDIATE_30S, "proxy")
    assert again == other == first
    assert seen.announced == [(("ip-9",), ())]
    assert seen.failures == ["SOURCE_UNPLUMBED", "SOURCE_UNPLUMBED", "PROXY_UNHEALTHY"]
    clock.advance(10)  # 30 s after the first: over, whatever came later
    assert health.get("ip-9") is None
    assert health.in_force() == ()


def test_no_rule_and_connect_failed_count_but_never_suspend() -> None:
    health, seen = registry(FakeClock())
    for _ in range(10):
        assert health.report("ip-1", UNPLUMBED, None, "no rule") is None
        assert health.report("ip-1", CONNECT, None, "refused") is None
    assert seen.announced == []
    assert seen.failures.count("CONNECT_FAILED") == 10
    assert not health


def test_threshold_fires_when_the_reports_within_the_period_reach_the_limit() -> None:
    clock = FakeClock()
    health, seen = registry(clock)
    assert health.report("px", PROXY, THREE_IN_5M, "1") is None
    clock.advance(100)
    assert health.report("px", PROXY, THREE_IN_5M, "2") is None
    clock.advance(200)  # the first is now exactly 300 s old: out of the window
    assert health.report("px", PROXY, THREE_IN_5M, "3") is None
    clock.advance(50)
    fired = health.report("px", PROXY, THREE_IN_5M, "4")  # 2, 3, 4 within 300 s
    assert fired is not None
    assert fired.reason == "4"
    assert seen.announced == [(("px",), ())]


def test_threshold_windows_are_per_source_and_class() -> None:
    health, _ = registry(FakeClock())
    rule = SuspendOnFailure(duration_nanos=SECOND, threshold="2/h")
    assert health.report("a", PROXY, rule, "") is None
    assert health.report("b", PROXY, rule, "") is None
    assert health.report("a", UNPLUMBED, rule, "") is None
    assert health.report("a", PROXY, rule, "") is not None
    assert [s.name for s in health.in_force()] == ["a"]


def test_ends_by_the_clock_and_announces_once() -> None:
    clock = FakeClock()
    health, seen = registry(clock)
    health.report("a", UNPLUMBED, IMMEDIATE_30S, "")
    clock.advance(10)
    health.report("b", UNPLUMBED, IMMEDIATE_30S, "")
    clock.advance(20)
    health.expire_due()
    health.expire_due()
    assert seen.announced[2:] == [((), ("a",))]
    assert (seen.resumptions, [s.name for s in health.in_force()]) == (["a"], ["b"])
    clock.advance(10)
    assert health.report("b", CONNECT, None, "") is None  # a report sees the end first
    assert seen.announced[3:] == [((), ("b",))]
    assert not health


def test_after_an_end_the_window_still_holds_the_earlier_reports() -> None:
    clock = FakeClock()
    health, _ = registry(clock)
    rule = SuspendOnFailure(duration_nanos=60 * SECOND, threshold="3/300s")
    for _ in range(3):
        health.report("px", PROXY, rule, "")
    clock.advance(61)
    assert health.get("px") is None
    # As kumod: the counts of the period go on, so the next failure fires again.
    assert health.report("px", PROXY, rule, "") is not None


def test_end_names_or_everything() -> None:
    health, seen = registry(FakeClock())
    for name in ("a", "b", "c"):
        health.report(name, UNPLUMBED, IMMEDIATE_30S, "")
    assert health.end(["b", "zz"]) == ("b",)
    assert seen.resumptions == ["b"]
    assert health.end(None) == ("a", "c")
    assert health.end(None) == ()
    assert len(seen.announced) == 3  # the caller announces what `end` returns


def test_in_force_of_names() -> None:
    health, _ = registry(FakeClock())
    health.report("a", UNPLUMBED, IMMEDIATE_30S, "")
    health.report("b", UNPLUMBED, IMMEDIATE_30S, "")
    assert [s.name for s in health.in_force(["b", "c", "b"])] == ["b"]


def test_windows_that_emptied_are_swept() -> None:
    clock = FakeClock()
    health, _ = registry(clock)
    rule = SuspendOnFailure(duration_nanos=SECOND, threshold="5/m")
    for index in range(3000):
        health.report(f"s-{index}", PROXY, rule, "")
        clock.advance(1)
    assert health.windows <= 2048  # bounded, not one per name ever seen


def test_the_window_keeps_few_runs_whatever_the_rate() -> None:
    window = FailureWindow()
    for index in range(100_000):
        count = window.add(index * 0.001, 60.0)  # 1000 reports a second for 100 s
    assert window.runs <= RUNS + 2
    assert 59_000 < count <= 60_000  # never more than the exact count


def test_the_window_is_exact_for_reports_further_apart_than_a_run() -> None:
    window = FailureWindow()
    assert [window.add(t, 10.0) for t in (0.0, 1.0, 2.0, 9.9, 10.0, 11.5)] == [1, 2, 3, 4, 4, 4]


def test_iso_time() -> None:
    assert iso_time(1_800_000_000.25) == "2027-01-15T08:00:00.250Z"


async def test_the_timer_ends_a_suspension_by_itself() -> None:
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()
    health = SourceHealth()

    def announce(suspended: tuple[Suspension, ...], resumed: tuple[str, ...]) -> None:
        if resumed == ("quick",):
            ended.set()

    health.announce = announce
    begun = loop.time()
    rule = SuspendOnFailure(duration_nanos=SECOND // 20)
    suspension = health.report("quick", UNPLUMBED, rule, "")
    assert suspension is not None
    assert suspension.until == pytest.approx(time.time() + 0.05, abs=1)
    await asyncio.wait_for(ended.wait(), 60)
    assert loop.time() - begun >= 0.049
    assert health.in_force() == ()
    health.close()
