"""kumo.counter_series: kumod's rolling buckets on a fake clock, caching by name, errors."""

import re
from pathlib import Path

import pytest

from egress_resolver.kumo_api import counter_series
from egress_resolver.kumo_api.counter_series import SeriesRegistry
from egress_resolver.runtime.lua_host import PolicyHost
from support import FakeClock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A fresh registry of series, on a clock that moves only when told to."""
    fake = FakeClock()
    monkeypatch.setattr(counter_series, "REGISTRY", SeriesRegistry(fake))
    return fake


class Steps:
    """A policy whose validate_config runs its next step each time, printing what it shows."""

    def __init__(self, tmp_path: Path, prelude: str, *steps: str) -> None:
        bodies = ",\n".join(f"function()\n{step}\nend" for step in steps)
        policy = tmp_path / "policy.lua"
        policy.write_text(
            f"{prelude}\nlocal steps, n = {{ {bodies} }}, 0\n"
            "kumo.on('validate_config', function() n = n + 1; steps[n]() end)\n"
        )
        self.host = PolicyHost(policy)

    def run(self) -> list[str]:
        validation = self.host.validate_config()
        assert validation.error is None, validation.error
        return [re.sub(r"\S*policy\.lua:", "policy.lua:", line) for line in validation.output]


def test_buckets_rotate_as_kumods_do(tmp_path: Path, clock: FakeClock) -> None:
    # The sequence of kumo-counter-series' own rotation test: 5 buckets of 2 s.
    series = "local s = kumo.counter_series.define { name = 'r', num_buckets = 5, bucket_size = 2 }"
    steps = Steps(
        tmp_path,
        series,
        "print(s:sum()); s:increment(1); print(s:sum())",
        "s:increment(1); print(s:sum())",  # +1 s: same bucket
        "s:increment(1); print(s:sum())",  # +1 s: the next one
        "s:increment(3); print(s:sum())",
        "s:increment(4); print(s:sum())",
        "s:increment(5); print(s:sum())",
        "s:increment(6); print(s:sum())",  # wrapped round: the first bucket (2) is dropped
        """
        s:increment(7)  -- 4 s later: one bucket skipped and zeroed
        local over = {}
        for _, secs in ipairs { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 60 } do
          over[#over + 1] = s:sum_over(secs)
        end
        print(s:sum(), table.concat(over, ' '), s:sum_over '3s', s:sum_over '1m')
        """,
        "s:increment(8); print(s:sum())",  # 12 s later: everything older is gone
        "s:observe(0); print(s:sum(), s:sum_over(2))",  # 60 s later
    )
    advances = [0, 1, 1, 2, 2, 2, 2, 4, 12, 60]
    shown = []
    for advance in advances:
        clock.advance(advance)
        shown.append(steps.run())
    assert shown == [
        ["0", "1"],
        ["2"],
        ["3"],
        ["6"],
        ["10"],
        ["15"],
        ["19"],
        ["22\t7 7 7 7 7 13 13 18 18 22 22 22\t7\t22"],
        ["8"],
        ["0\t0"],
    ]


def test_time_left_within_a_bucket_is_dropped_at_rotation(tmp_path: Path, clock: FakeClock) -> None:
    # kumod restarts a bucket's time when it rotates: 3 s then 1 s is not two buckets.
    steps = Steps(
        tmp_path,
        "local s = kumo.counter_series.define { name = 'd', num_buckets = 3, bucket_size = 2 }",
        "s:increment(1)",
        "s:increment(10); print(s:sum_over(1))",
        "s:increment(100); print(s:sum_over(1), s:sum())",
    )
    steps.run()
    clock.advance(3)
    assert steps.run() == ["10"]
    clock.advance(1)
    assert steps.run() == ["110\t111"]


def test_delta_observe_and_saturation(tmp_path: Path, clock: FakeClock) -> None:
    steps = Steps(
        tmp_path,
        "local s = kumo.counter_series.define { name = 'g', num_buckets = 4, bucket_size = '1m' }",
        """
        s:delta(3); s:delta(-2); print(s:sum())
        s:delta(-5); print(s:sum())
        s:observe(42); print(s:sum())
        s:increment(math.maxinteger); s:increment(math.maxinteger); s:increment(5)
        print(s:sum(), math.type(s:sum()))
        """,
    )
    assert steps.run() == ["1", "0", "42", "1.844674407371e+19\tfloat"]


def test_define_caches_by_name_and_shape(tmp_path: Path, clock: FakeClock) -> None:
    steps = Steps(
        tmp_path,
        "local define = kumo.counter_series.define",
        """
        local a = define { name = 'c', num_buckets = 6, bucket_size = '1m', initial_value = 10 }
        local same = define { name = 'c', num_buckets = 6, bucket_size = 60, initial_value = 99 }
        a:increment(1)
        print(a:sum(), same:sum())
        local other = define { name = 'c', num_buckets = 4, bucket_size = '30s', initial_value = 7 }
        print(other:sum(), a:sum())
        local sub = define { name = 'sub', num_buckets = 3, bucket_size = '500ms' }
        local rounded = define { name = 'sub', num_buckets = 3, bucket_size = 1 }
        sub:increment(5)
        print(rounded:sum(), type(sub), tostring(sub):match '^CounterSeries')
        """,
        "print(define { name = 'c', num_buckets = 4, bucket_size = 30 }:sum())",
    )
    assert steps.run() == ["11\t11", "7\t11", "5\ttable\tCounterSeries"]
    # Series outlive the run that defined them (and a reload), as in kumod.
    assert steps.run() == ["7"]


def test_errors_use_kumods_wording(tmp_path: Path, clock: FakeClock) -> None:
    steps = Steps(
        tmp_path,
        "local define = kumo.counter_series.define",
        """
        local function show(...) print(select(2, pcall(...))) end
        show(define, { name = 'e', num_buckets = 0, bucket_size = 1 })
        show(define, { name = 'e', num_buckets = 256, bucket_size = 1 })
        show(define, { name = 'e', num_buckets = 1.5, bucket_size = 1 })
        show(define, { name = 'e', num_buckets = 2, bucket_size = 0 })
        show(define, { name = 'e', num_buckets = 2, bucket_size = 'soon' })
        show(define, { name = 'e', num_buckets = 2, bucket_size = -1 })
        show(define, { name = 'e', num_buckets = 2 })
        show(define, { num_buckets = 2, bucket_size = 1 })
        show(define, { name = 'e', num_buckets = 2, bucket_size = 1, size = 3 })
        show(define, { name = 'e', num_buckets = 2, bucket_size = 1, initial_value = -1 })
        show(define, { name = {}, num_buckets = 2, bucket_size = 1 })
        show(define, 'e')
        local s = define { name = 'e', num_buckets = 2, bucket_size = 1 }
        show(s.increment, 5)
        show(s.increment, s, -1)
        show(s.observe, s, 'many')
        show(s.delta, s, 0.5)
        show(s.sum_over, s, {})
        show(s.sum_over, s, 'a while')
        """,
    )
    where = "kumo.counter_series.define"
    assert steps.run() == [
        f"{where}: num_buckets must be >= 1",
        f"{where}: num_buckets: invalid value: integer `256`, expected u8",
        f"{where}: num_buckets: invalid type: 1.5, expected u8",
        f"{where}: bucket_size must be >= 1 second",
        f"{where}: bucket_size: invalid duration 'soon': expected number at 0",
        f"{where}: bucket_size: invalid duration -1: must not be negative",
        f"{where}: missing field `bucket_size`",
        f"{where}: missing field `name`",
        f"{where}: unknown field `size`, expected one of "
        "`name`, `num_buckets`, `bucket_size`, `initial_value`",
        f"{where}: initial_value: invalid value: integer `-1`, expected u64",
        f"{where}: name: invalid type: a table, expected a string",
        f"{where}: expected a table of parameters, got 'e'",
        "counter_series:increment: call it as series:increment(...)",
        "counter_series:increment: invalid value: integer `-1`, expected u64",
        "counter_series:observe: invalid type: 'many', expected u64",
        "counter_series:delta: invalid type: 0.5, expected i64",
        "counter_series:sum_over: invalid type: a table, expected a duration",
        "counter_series:sum_over: invalid duration 'a while': expected number at 0",
    ]
