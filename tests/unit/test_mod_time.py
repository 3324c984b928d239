"""kumo.time and kumo.sleep: kumod's Time and TimeDelta shapes, formats, errors, timers, sleep."""

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.definitions.validation import SourceDefinition
from egress_resolver.kumo_api import IoOutcome, kumo_time, perform
from egress_resolver.kumo_api.mod_time import USER_LUA_LATENCY
from egress_resolver.ops.metrics import Metrics
from egress_resolver.runtime.lua_host import SOURCE_EVENT, PolicyHost
from egress_resolver.runtime.lua_tasks import Pending
from egress_resolver.runtime.policy_runner import PolicyRunner
from egress_resolver.serving.cache_values import CacheStats
from support import FakeClock

Printer = Callable[[str], list[str]]


@pytest.fixture
def lua(tmp_path: Path) -> Printer:
    """Run Lua in a validate_config handler; the lines it printed."""

    def run(body: str) -> list[str]:
        policy = tmp_path / "policy.lua"
        policy.write_text(f"kumo.on('validate_config', function()\n{body}\nend)\n")
        validation = PolicyHost(policy).validate_config()
        assert validation.error is None, validation.error
        # errors raised on the policy's lines name the file: keep its name only
        return [re.sub(r"\S*policy\.lua:", "policy.lua:", line) for line in validation.output]

    return run


def test_with_ymd_hms_has_kumods_fields_and_formats(lua: Printer) -> None:
    out = lua(
        """
        local t = kumo.time.with_ymd_hms(2000, 1, 2, 3, 4, 5)
        print(tostring(t), t.year, t.month, t.day, t.hour, t.minute, t.second)
        print(t.unix_timestamp, t.unix_timestamp_millis, math.type(t.unix_timestamp))
        print(t.rfc2822, t.rfc3339, t.no_such_field, type(t), next(t))
        local late = kumo.time.with_ymd_hms(1999, 12, 31, 23, 59, 59)
        print(late.rfc2822, kumo.time.with_ymd_hms(2024, 2, 29, 0, 0, 0).rfc3339)
        """
    )
    assert out == [
        "2000-01-02 03:04:05 UTC\t2000\t1\t2\t3\t4\t5",
        "946782245\t946782245000\tinteger",
        "Sun, 2 Jan 2000 03:04:05 +0000\t2000-01-02T03:04:05+00:00\tnil\ttable\tnil",
        "Fri, 31 Dec 1999 23:59:59 +0000\t2024-02-29T00:00:00+00:00",
    ]


def test_fractions_show_as_chrono_shows_them(lua: Printer) -> None:
    out = lua(
        """
        for _, ts in ipairs { 0.5, 1.25, 0.000125, 1e-9 * 7, -0.5, 0 } do
          local t = kumo.time.from_unix_timestamp(ts)
          print(tostring(t), t.rfc3339, t.unix_timestamp, t.unix_timestamp_millis)
        end
        """
    )
    assert out == [
        "1970-01-01 00:00:00.500 UTC\t1970-01-01T00:00:00.500+00:00\t0\t500",
        "1970-01-01 00:00:01.250 UTC\t1970-01-01T00:00:01.250+00:00\t1\t1250",
        "1970-01-01 00:00:00.000125 UTC\t1970-01-01T00:00:00.000125+00:00\t0\t0",
        "1970-01-01 00:00:00.000000007 UTC\t1970-01-01T00:00:00.000000007+00:00\t0\t0",
        "1969-12-31 23:59:59.500 UTC\t1969-12-31T23:59:59.500+00:00\t-1\t-500",
        "1970-01-01 00:00:00 UTC\t1970-01-01T00:00:00+00:00\t0\t0",
    ]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("%Y-%m-%d %H:%M:%S", "2001-07-08 00:34:59"),
        ("%H:%M:%S%", "00:34:59%"),  # lenient: a lone % stays
        ("%Q|%-Q|%%", "%Q|%-Q|%"),  # unknown specifiers are copied through
        ("%c", "Sun Jul  8 00:34:59 2001"),
        ("%+", "2001-07-08T00:34:59.026490+00:00"),
        (
            "%D|%x|%F|%v|%R|%T|%X|%r",
            "07/08/01|07/08/01|2001-07-08| 8-Jul-2001|00:34|00:34:59|00:34:59|12:34:59 AM",
        ),
        ("%a %A %b %B %h", "Sun Sunday Jul July Jul"),
        ("%C %y %q %e %j %U %W %G %g %V %u %w", "20 01 3  8 189 27 27 2001 01 27 7 0"),
        ("%k|%l|%I|%P|%p", " 0|12|12|am|AM"),
        ("%-d|%_m|%0e|%-H|%-j", "8| 7|08|0|189"),
        ("%s %Z %z %:z %::z %:::z", "994552499 UTC +0000 +00:00 +00:00:00 +00"),
        (
            "%f|%.f|%.3f|%.6f|%.9f|%3f|%6f|%9f",
            "026490000|.026490|.026|.026490|.026490000|026|026490|026490000",
        ),
        ("%t%n", "\t\n"),
    ],
)
def test_format_is_chronos_strftime(lua: Printer, fmt: str, expected: str) -> None:
    out = lua(
        f"""
        local t = kumo.time.parse_rfc3339 '2001-07-08T00:34:59.026490Z'
        print(kumo.json_encode(t:format(kumo.json_parse {json.dumps(json.dumps(fmt))})))
        """
    )
    assert json.loads(out[0]) == expected


def test_parse_rfc3339_and_rfc2822(lua: Printer) -> None:
    out = lua(
        """
        local function show(f, text)
          local ok, t = pcall(f, text)
          print(ok and tostring(t) or t)
        end
        local p3339, p2822 = kumo.time.parse_rfc3339, kumo.time.parse_rfc2822
        show(p3339, '2000-01-02T03:04:05+00:00')
        show(p3339, '2000-01-02t03:04:05.123456789999Z')
        show(p3339, '2000-01-02 03:04:05-01:30')
        show(p3339, '2000-01-02T03:04:05')
        show(p3339, '2000-02-30T03:04:05Z')
        show(p3339, 20000102)
        show(p2822, 'Sun, 2 Jan 2000 03:04:05 +0000')
        show(p2822, 'Sun, 02 Jan 2000 03:04:05 UTC')
        show(p2822, '2 Jan 2000 03:04 EST')
        show(p2822, 'Thu, 02 Jul 26 18:55:38 CEST (Central (European)) ')
        show(p2822, 'Wed, 02 Jul 69 18:55:38 XYZ')
        show(p2822, 'Mon, 2 Jan 2000 03:04:05 +0000')
        show(p2822, 'Sun, 2 Foo 2000 03:04:05 +0000')
        show(p2822, 'not a date')
        """
    )
    assert out == [
        "2000-01-02 03:04:05 UTC",
        "2000-01-02 03:04:05.123456789 UTC",
        "2000-01-02 04:34:05 UTC",
        "kumo.time.parse_rfc3339: input contains invalid characters",
        "kumo.time.parse_rfc3339: input is out of range",
        "kumo.time.parse_rfc3339: expected a string, got 20000102",
        "2000-01-02 03:04:05 UTC",
        "2000-01-02 03:04:05 UTC",
        "2000-01-02 08:04:00 UTC",
        "2026-07-02 16:55:38 UTC",
        "1969-07-02 18:55:38 UTC",  # an unknown zone is -0000; 69 is 1969
        "kumo.time.parse_rfc2822: no possible date and time matching input",
        "kumo.time.parse_rfc2822: input contains invalid characters",
        "kumo.time.parse_rfc2822: input contains invalid characters",
    ]


def test_constructor_errors_use_kumods_wording(lua: Printer) -> None:
    out = lua(
        """
        print(pcall(kumo.time.from_unix_timestamp, 'soon'))
        print(pcall(kumo.time.from_unix_timestamp, 1e300))
        print(pcall(kumo.time.with_ymd_hms, 2001, 2, 29, 0, 0, 0))
        print(pcall(kumo.time.with_ymd_hms, 2001, 2))
        print(pcall(kumo.time.with_ymd_hms, 2001, 2, 1.5, 0, 0, 0))
        local t = kumo.time.now()
        print(pcall(t.format, t, 5))
        print(pcall(t.format, '%H'))
        """
    )
    assert out == [
        "false\tkumo.time.from_unix_timestamp: "
        "timestamp must be either an integer or floating point number of seconds",
        "false\tkumo.time.from_unix_timestamp: invalid timestamp",
        "false\tkumo.time.with_ymd_hms: time cannot be represented due to a gap in local time "
        "(no such date and time: 2001-02-29 00:00:00)",
        "false\tkumo.time.with_ymd_hms: "
        "expected six integers: year, month, day, hour, minute, second",
        "false\tkumo.time.with_ymd_hms: "
        "expected six integers: year, month, day, hour, minute, second",
        "false\tTime:format: expected a string, got 5",
        "false\tTime:format: expected a Time, got a string",
    ]


def test_arithmetic_and_equality(lua: Printer) -> None:
    out = lua(
        """
        local epoch = kumo.time.from_unix_timestamp(0)
        local half = kumo.time.from_unix_timestamp(0.5)
        local delta = half - epoch
        print(delta.seconds, delta.human, tostring(half + delta), tostring(half - delta))
        print(tostring(epoch - half), (epoch - half).milliseconds, (epoch - half).seconds)
        print(epoch == kumo.time.with_ymd_hms(1970, 1, 1, 0, 0, 0), epoch ~= half, epoch == delta)
        local sum = delta + delta + delta
        print(sum.seconds, (sum - delta).nanoseconds, sum == kumo.time.parse_duration(1.5))
        print(pcall(function() return epoch + epoch end))
        print(pcall(function() return epoch - 5 end))
        print(pcall(function() return delta + epoch end))
        print(pcall(function() return epoch + kumo.time.parse_duration(1e15) end))
        """
    )
    assert out == [
        "0.5\t500ms\t1970-01-01 00:00:01 UTC\t1970-01-01 00:00:00 UTC",
        "-500ms\t-500\t-0.5",
        "true\ttrue\tfalse",
        "1.5\t1000000000\ttrue",
        "false\tpolicy.lua:11: Time + TimeDelta: expected a TimeDelta, got a table",
        "false\tpolicy.lua:12: could not represent argument as either Time or TimeDelta "
        "(got a number)",
        "false\tpolicy.lua:13: TimeDelta + TimeDelta: expected a TimeDelta, got a table",
        "false\tTime + TimeDelta: time would overflow",
    ]


def test_time_deltas_fields_and_parse_duration(lua: Printer) -> None:
    out = lua(
        """
        local function show(value)
          local ok, d = pcall(kumo.time.parse_duration, value)
          if not ok then print(d) return end
          print(d.seconds, d.milliseconds, d.microseconds, d.nanoseconds, d.human, tostring(d))
        end
        show(20)
        show(2.5)
        show('5 mins')
        show('1h 30m 15s')
        show('400 days 1ns')
        show(-1.25)
        show(-3)
        show('5')
        show('five minutes')
        show({})
        show(2^63)
        """
    )
    assert out == [
        "20.0\t20000\t20000000\t20000000000\t20s\t20s",
        "2.5\t2500\t2500000\t2500000000\t2s 500ms\t2s 500ms",
        "300.0\t300000\t300000000\t300000000000\t5m\t5m",
        "5415.0\t5415000\t5415000000\t5415000000000\t1h 30m 15s\t1h 30m 15s",
        "34560000.0\t34560000000\t34560000000000\t34560000000000001\t"
        "1year 1month 4days 7h 26m 24s 1ns\t1year 1month 4days 7h 26m 24s 1ns",
        "-1.25\t-1250\t-1250000\t-1250000000\t-1s 250ms\t-1s 250ms",
        "-3.0\t-3000\t-3000000\t-3000000000\t-3s\t-3s",
        "kumo.time.parse_duration: invalid duration '5': time unit needed, for example 5sec or 5ms",
        "kumo.time.parse_duration: invalid duration 'five minutes': expected number at 0",
        "kumo.time.parse_duration: invalid duration value",
        "kumo.time.parse_duration: time would overflow",
    ]


def test_now_and_elapsed_read_the_wall_clock(lua: Printer, monkeypatch: pytest.MonkeyPatch) -> None:
    wall = [946_782_245 * 10**9]
    monkeypatch.setattr(kumo_time, "WALL_CLOCK", lambda: wall[0])
    policy_out = lua(
        """
        local t = kumo.time.now()
        print(tostring(t), t.elapsed.seconds, tostring(t.elapsed))
        """
    )
    assert policy_out == ["2000-01-02 03:04:05 UTC\t0.0\t0s"]
    wall[0] += 90 * 10**9 + 5
    out = lua("print(kumo.time.parse_rfc3339('2000-01-02T03:04:05Z').elapsed.human)")
    assert out == ["1m 30s 5ns"]


def test_start_timer_records_the_latency_histogram(
    lua: Printer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()

    def ticking() -> float:  # each reading is 1.5 s after the one before
        clock.advance(1.5)
        return clock()

    monkeypatch.setattr(kumo_time, "TIMER_CLOCK", ticking)
    before = _histogram("unit-timer")
    out = lua(
        """
        local timer = kumo.time.start_timer 'unit-timer'
        print(timer:done(), timer:done())
        do
          local closing <close> = kumo.time.start_timer 'unit-timer'
        end
        print(pcall(kumo.time.start_timer, {}))
        """
    )
    assert out == ["1.5\tnil", "false\tkumo.time.start_timer: expected a label string, got a table"]
    assert _histogram("unit-timer") == (before[0] + 2, before[1] + 3.0)  # done, and <close>
    text = generate_latest(Metrics(lambda: CacheStats(0, 0, 0, 0, 0)).registry).decode()
    assert 'user_lua_latency_bucket{label="unit-timer",le="2.5"}' in text


def _histogram(label: str) -> tuple[float, float]:
    """user_lua_latency's count and sum for `label`."""
    found = {"user_lua_latency_count": 0.0, "user_lua_latency_sum": 0.0}
    for metric in USER_LUA_LATENCY.collect():
        for sample in metric.samples:
            if sample.name in found and sample.labels["label"] == label:
                found[sample.name] = sample.value
    return found["user_lua_latency_count"], found["user_lua_latency_sum"]


SLEEPER = """
kumo.on('get_egress_source', function(name)
  if name == 'sleeper' then kumo.time.sleep(%s)
  elseif name == 'old-sleeper' then kumo.sleep(%s) end
  return kumo.make_egress_source { name = name, ehlo_domain = name .. '.example' }
end)
"""


def _sleeper(tmp_path: Path, seconds: float) -> Path:
    policy = tmp_path / "sleeper.lua"
    policy.write_text(SLEEPER % (seconds, seconds))
    return policy


@pytest.mark.parametrize(
    ("name", "what"), [("sleeper", "kumo.time.sleep"), ("old-sleeper", "kumo.sleep")]
)
def test_sleep_yields_a_real_wait_while_other_handlers_run(
    tmp_path: Path, name: str, what: str
) -> None:
    host = PolicyHost(_sleeper(tmp_path, 0.2), handler_timeout=30.0)
    step = host.begin(SOURCE_EVENT, name)
    assert isinstance(step, Pending)
    assert step.request.what == what
    # While it waits, another handler runs to the end on the same Lua thread.
    other = host.begin(SOURCE_EVENT, "other")
    assert isinstance(other, SourceDefinition)
    assert other.ehlo_domain == "other.example"
    started = time.monotonic()
    outcome = asyncio.run(_perform(step))
    assert time.monotonic() - started >= 0.2
    done = host.resume(step, outcome)
    assert isinstance(done, SourceDefinition)
    assert done.ehlo_domain == f"{name}.example"


async def _perform(step: Pending) -> IoOutcome:
    return await perform(step.request, 30.0)


async def test_a_sleeping_handler_does_not_hold_up_the_runner(tmp_path: Path) -> None:
    runner = PolicyRunner(_sleeper(tmp_path, 3600), handler_timeout=7200.0)
    assert await runner.load()
    try:
        sleeping = asyncio.create_task(runner.resolve_source("sleeper"))
        answered = await asyncio.wait_for(runner.resolve_source("quick"), 60)
        assert answered.definition().ehlo_domain == "quick.example"
        assert not sleeping.done()
        sleeping.cancel()
    finally:
        await runner.close_data_sources()
        runner.close()


def test_a_sleep_past_the_budget_is_a_handler_timeout(tmp_path: Path) -> None:
    host = PolicyHost(_sleeper(tmp_path, 3600), handler_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(ResolveError) as caught:
        host.resolve_source("sleeper")
    assert caught.value.reason is Reason.HANDLER_TIMEOUT
    assert time.monotonic() - started < 30


def test_sleep_arguments(lua: Printer) -> None:
    out = lua(
        """
        print(pcall(kumo.sleep, -1))
        print(pcall(kumo.time.sleep, 'soon'))
        print(pcall(kumo.time.sleep, 0/0))
        print(kumo.sleep(0), kumo.time.sleep('0'), kumo.time.sleep(0.001))
        """
    )
    assert out == [
        "false\tkumo.sleep: cannot sleep for -1 seconds: expected a finite number >= 0",
        "false\tkumo.time.sleep: expected a number of seconds, got 'soon'",
        "false\tkumo.time.sleep: cannot sleep for nan seconds: expected a finite number >= 0",
        "nil\tnil\tnil",
    ]


def test_a_script_sleeps_without_a_budget(tmp_path: Path) -> None:
    # `egress-resolver script` runs main with no time budget: the wait blocks the Lua thread.
    policy = tmp_path / "script.lua"
    policy.write_text("kumo.on('main', function(seconds) kumo.sleep(tonumber(seconds)) end)\n")
    host = PolicyHost(policy, script=True)
    started = time.monotonic()
    host.run_main("0.1")
    assert time.monotonic() - started >= 0.1
