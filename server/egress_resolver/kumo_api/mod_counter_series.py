"""`kumo.counter_series` (crates/mod-counter-series): named rolling counters; the engine is
counter_series.py.

`define { name, num_buckets, bucket_size, initial_value }` returns a series
object with `increment`, `delta`, `observe`, `sum` and `sum_over`. Durations
are kumod's: whole seconds, fractions of seconds, or humantime strings;
`bucket_size` is rounded up to whole seconds. Argument errors use kumod's
(serde's) wording where it has one.
"""

from __future__ import annotations

from egress_resolver.bridge.values import is_lua_table
from egress_resolver.definitions.durations import NANOS_PER_SECOND, DurationError, parse_duration
from egress_resolver.kumo_api import counter_series
from egress_resolver.kumo_api.context import ApiContext, LuaModule
from egress_resolver.kumo_api.counter_series import U64_MAX, CounterSeries

_FIELDS = ("name", "num_buckets", "bucket_size", "initial_value")
_I64_MAX = 2**63 - 1

_SHIM = """
local py = ...
local inner = setmetatable({}, { __mode = 'k' })
local methods = {}
for _, name in ipairs { 'increment', 'delta', 'observe', 'sum', 'sum_over' } do
  local fn = py[name]
  methods[name] = function(self, ...)
    local series = type(self) == 'table' and inner[self]
    if not series then
      error('counter_series:' .. name .. ': call it as series:' .. name .. '(...)', 2)
    end
    return fn(series, ...)
  end
end
local CounterSeries = { __name = 'CounterSeries', __index = methods }
return {
  define = function(params)
    local series = setmetatable({}, CounterSeries)
    inner[series] = py.define(params)
    return series
  end,
}
"""


def _shown(value: object) -> str:
    if value is None or isinstance(value, str | int | float):
        return repr(value)
    return "a table" if is_lua_table(value) else f"a {type(value).__name__}"


def _integer(value: object, where: str, low: int, high: int, kind: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if type(value) is not int:
        raise ValueError(f"{where}: invalid type: {_shown(value)}, expected {kind}")
    if not low <= value <= high:
        raise ValueError(f"{where}: invalid value: integer `{value}`, expected {kind}")
    return value


def _seconds(value: object, where: str) -> int:
    """A kumod duration (seconds, or a humantime string) in nanoseconds."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{where}: invalid type: {_shown(value)}, expected a duration")
    try:
        return parse_duration(value)
    except DurationError as err:
        raise ValueError(f"{where}: {err}") from None


def define(params: object) -> CounterSeries:
    """`kumo.counter_series.define { ... }`."""
    where = "kumo.counter_series.define"
    if not is_lua_table(params):
        raise ValueError(f"{where}: expected a table of parameters, got {_shown(params)}")
    fields = dict(params.items())  # type: ignore[attr-defined]
    for key in fields:
        if key not in _FIELDS:
            expected = ", ".join(f"`{f}`" for f in _FIELDS)
            raise ValueError(f"{where}: unknown field `{key}`, expected one of {expected}")
    for key in _FIELDS[:3]:
        if key not in fields:
            raise ValueError(f"{where}: missing field `{key}`")
    name = fields["name"]
    if not isinstance(name, str):
        raise ValueError(f"{where}: name: invalid type: {_shown(name)}, expected a string")
    num_buckets = _integer(fields["num_buckets"], f"{where}: num_buckets", 0, 255, "u8")
    nanos = _seconds(fields["bucket_size"], f"{where}: bucket_size")
    bucket_size = -(-nanos // NANOS_PER_SECOND)  # rounded up to whole seconds
    initial = fields.get("initial_value")
    if initial is not None:
        initial = _u64(initial, f"{where}: initial_value")
    if num_buckets == 0:
        raise ValueError(f"{where}: num_buckets must be >= 1")
    if bucket_size == 0:
        raise ValueError(f"{where}: bucket_size must be >= 1 second")
    return counter_series.REGISTRY.define(name, num_buckets, bucket_size, initial or 0)


def _total(value: int) -> int | float:
    """A sum as kumod hands a u64 to Lua: an integer, or a float past i64."""
    return value if value <= _I64_MAX else float(value)


def _u64(value: object, where: str) -> int:
    return _integer(value, where, 0, U64_MAX, "u64")


def increment(series: CounterSeries, value: object = None) -> None:
    series.increment(_u64(value, "counter_series:increment"))


def delta(series: CounterSeries, value: object = None) -> None:
    series.delta(_integer(value, "counter_series:delta", -(2**63), _I64_MAX, "i64"))


def observe(series: CounterSeries, value: object = None) -> None:
    series.observe(_u64(value, "counter_series:observe"))


def total(series: CounterSeries) -> int | float:
    return _total(series.sum())


def total_over(series: CounterSeries, duration: object = None) -> int | float:
    seconds = _seconds(duration, "counter_series:sum_over") // NANOS_PER_SECOND
    return _total(series.sum_over(seconds))


def build(ctx: ApiContext) -> object:
    """The `kumo.counter_series` table."""
    functions = {
        "define": define,
        "increment": increment,
        "delta": delta,
        "observe": observe,
        "sum": total,
        "sum_over": total_over,
    }
    return ctx.shim(_SHIM, functions)


MODULE = LuaModule("kumo.counter_series", build)
