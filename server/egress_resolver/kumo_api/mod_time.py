"""`kumo.time` (crates/mod-time): Time and TimeDelta objects, parsing, sleep and timers.

The values and their formats are kumo_time.py's; this is the Lua side.
`Time` and `TimeDelta` objects are tables whose metatables give kumod's
fields (`t.year`, `d.seconds`), methods (`t:format '%H:%M'`) and
metamethods (`tostring`, `==`, `+`, `-`); the value itself is kept out of
reach of `pairs`. `kumo.time.sleep` (and `kumo.sleep`, mod_sleep.py)
waits as I/O does: the handler's coroutine yields and other handlers run
meanwhile. `start_timer` records into the `user_lua_latency` histogram.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import Histogram

from egress_resolver.bridge.values import is_lua_table
from egress_resolver.kumo_api import kumo_time, time_parse
from egress_resolver.kumo_api.context import ApiContext, LuaModule
from egress_resolver.kumo_api.io import IoRequest
from egress_resolver.kumo_api.kumo_time import TimeDelta, TimeError

USER_LUA_LATENCY = Histogram(
    "user_lua_latency",
    "how long something user-defined took to run in your lua policy",
    ("label",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=None,  # ops/metrics.py registers it with the server's registry
)
"""kumod's histogram of `kumo.time.start_timer` timings, by label."""
T = TypeVar("T")

_SHIM = """
local py, await = ...
local inner = setmetatable({}, { __mode = 'k' })
local Time, TimeDelta, Timer = { __name = 'Time' }, { __name = 'TimeDelta' }, { __name = 'Timer' }
local function wrap(mt, value)
  local object = setmetatable({}, mt)
  inner[object] = value
  return object
end
local function kind(x)
  local mt = type(x) == 'table' and getmetatable(x)
  if mt == Time or mt == TimeDelta then return mt end
end
local function expect(mt, x, what)
  if kind(x) ~= mt then error(what .. ': expected a ' .. mt.__name .. ', got a ' .. type(x), 3) end
  return inner[x]
end

local time_methods = {
  format = function(self, fmt) return py.format(expect(Time, self, 'Time:format'), fmt) end,
}
function Time.__index(self, key)
  if key == 'elapsed' then return wrap(TimeDelta, py.time_field(inner[self], key)) end
  return time_methods[key] or py.time_field(inner[self], key)
end
function Time.__tostring(self) return py.to_string(inner[self]) end
function Time.__eq(a, b)
  return kind(a) == Time and kind(b) == Time and py.eq(inner[a], inner[b])
end
function Time.__add(a, b)
  local what = 'Time + TimeDelta'
  return wrap(Time, py.add(expect(Time, a, what), expect(TimeDelta, b, what)))
end
function Time.__sub(a, b)
  local t = expect(Time, a, 'Time - x')
  if kind(b) == Time then return wrap(TimeDelta, py.since(t, inner[b])) end
  if kind(b) == TimeDelta then return wrap(Time, py.add(t, py.neg(inner[b]))) end
  error('could not represent argument as either Time or TimeDelta (got a ' .. type(b) .. ')', 2)
end

function TimeDelta.__index(self, key) return py.delta_field(inner[self], key) end
function TimeDelta.__tostring(self) return py.delta_field(inner[self], 'human') end
function TimeDelta.__eq(a, b)
  return kind(a) == TimeDelta and kind(b) == TimeDelta and py.eq(inner[a], inner[b])
end
function TimeDelta.__add(a, b)
  return wrap(TimeDelta, py.delta_sum(expect(TimeDelta, a, 'TimeDelta + TimeDelta'),
                                      expect(TimeDelta, b, 'TimeDelta + TimeDelta'), 1))
end
function TimeDelta.__sub(a, b)
  return wrap(TimeDelta, py.delta_sum(expect(TimeDelta, a, 'TimeDelta - TimeDelta'),
                                      expect(TimeDelta, b, 'TimeDelta - TimeDelta'), -1))
end

local function done(self) return py.timer_done(inner[self]) end
Timer.__index = { done = done }
Timer.__close = done

local time = {}
function time.now() return wrap(Time, py.now()) end
function time.from_unix_timestamp(value) return wrap(Time, py.from_unix_timestamp(value)) end
function time.with_ymd_hms(...) return wrap(Time, py.with_ymd_hms(...)) end
function time.parse_rfc2822(text) return wrap(Time, py.parse_rfc2822(text)) end
function time.parse_rfc3339(text) return wrap(Time, py.parse_rfc3339(text)) end
function time.parse_duration(value) return wrap(TimeDelta, py.parse_duration(value)) end
function time.start_timer(label) return wrap(Timer, py.start_timer(label)) end
function time.sleep(seconds) return await(py.sleep('kumo.time.sleep', seconds)) end
return time
"""


class _Timer:
    """One `start_timer` call: its label and when it started; done once."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started: float | None = kumo_time.TIMER_CLOCK()

    def done(self) -> float | None:
        if self.started is None:
            return None
        elapsed = kumo_time.TIMER_CLOCK() - self.started
        self.started = None
        USER_LUA_LATENCY.labels(self.label).observe(elapsed)
        return elapsed


def sleep_request(where: str, seconds: object) -> IoRequest:
    """kumo.sleep / kumo.time.sleep: a wait the host performs while other handlers run."""
    delay = _checked(where, kumo_time.sleep_seconds, seconds, where)

    async def run() -> None:
        await asyncio.sleep(delay)

    return IoRequest(where, run, None)


def _checked(where: str, fn: Callable[..., T], *args: object) -> T:
    """Call `fn`, naming `where` in the message of the TimeError it raises."""
    try:
        return fn(*args)
    except TimeError as err:
        message = str(err)
        raise TimeError(message if message.startswith(where) else f"{where}: {message}") from None


def _text(where: str, value: object) -> str:
    if not isinstance(value, str):
        raise TimeError(f"{where}: expected a string, got {value!r}")
    return value


def build(ctx: ApiContext) -> object:
    """The `kumo.time` table."""

    def named(where: str, fn: Callable[..., object], text: bool = False) -> object:
        if text:
            return lambda value: _checked(where, fn, _text(where, value))
        return lambda *args: _checked(where, fn, *args)

    functions = {
        "now": kumo_time.now,
        "from_unix_timestamp": named(
            "kumo.time.from_unix_timestamp", kumo_time.from_unix_timestamp
        ),
        "with_ymd_hms": named("kumo.time.with_ymd_hms", kumo_time.with_ymd_hms),
        "parse_rfc2822": named("kumo.time.parse_rfc2822", time_parse.parse_rfc2822, text=True),
        "parse_rfc3339": named("kumo.time.parse_rfc3339", time_parse.parse_rfc3339, text=True),
        "parse_duration": named("kumo.time.parse_duration", kumo_time.parse_duration),
        "format": lambda t, fmt: _checked(
            "Time:format", kumo_time.format_time, t, _text("Time:format", fmt)
        ),
        "time_field": kumo_time.time_field,
        "delta_field": kumo_time.delta_field,
        "to_string": kumo_time.to_string,
        "eq": lambda a, b: a == b,
        "add": lambda t, d: _checked("Time + TimeDelta", kumo_time.make_time, t.ns + d.ns),
        "since": lambda a, b: TimeDelta(a.ns - b.ns),
        "neg": lambda d: TimeDelta(-d.ns),
        "delta_sum": lambda a, b, sign: _checked(
            "TimeDelta arithmetic", kumo_time.make_delta, a.ns + sign * b.ns
        ),
        "start_timer": lambda label: _Timer(_label(label)),
        "timer_done": lambda timer: timer.done(),
        "sleep": sleep_request,
    }
    return ctx.shim(_SHIM, functions)


def _label(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    kind = "a table" if is_lua_table(value) else repr(value)
    raise TimeError(f"kumo.time.start_timer: expected a label string, got {kind}")


MODULE = LuaModule("kumo.time", build)
