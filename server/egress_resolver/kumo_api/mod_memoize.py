"""`kumo.memoize` (crates/mod-memoize); the caches themselves are memoize.py's MemoStore.

Values are kept as plain data; objects with a `__memoize` metamethod (a domain map, a
`QueueConfig`) are kept and rebuilt as memo_values.py says.
"""

from __future__ import annotations

from egress_resolver.bridge.values import shallow_dict, to_python
from egress_resolver.kumo_api.context import ApiContext, LuaModule
from egress_resolver.kumo_api.memo_values import Freezer
from egress_resolver.kumo_api.memoize import (
    MemoCache,
    MemoizeError,
    check_cacheable,
    memo_key,
    memo_params,
    restore,
    snapshot,
)

_SHIM = """
local py = ...
local function entries(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end
local kumo = {}
function kumo.memoize(fn, params)
  if type(fn) ~= 'function' then
    error('kumo.memoize: expected a function, got ' .. type(fn), 2)
  end
  if type(params) ~= 'table' then
    error('kumo.memoize: expected a table of parameters, got ' .. type(params), 2)
  end
  local cache = py.cache(entries(params))
  return function(...)
    local key = py.key(cache, ...)
    local hit, value = py.get(cache, key)
    if hit then return value end
    value = fn(...)
    py.put(cache, key, value)
    return value
  end
end
return kumo
"""


class Memoize:
    """The Python half of `kumo.memoize` for one Lua runtime."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx
        self._memo = ctx.state.memo
        self._epoch = self._memo.epoch  # this runtime's configuration epoch
        self._freezer = Freezer(ctx.runtime)

    def build(self) -> object:
        """`memoize`, to add to `kumo`."""
        return self._ctx.shim(
            _SHIM, {"cache": self.cache, "key": self.key, "get": self.get, "put": self.put}
        )

    def cache(self, params: object) -> MemoCache:
        try:
            return self._memo.cache(memo_params(shallow_dict(params)))
        except MemoizeError as err:
            raise MemoizeError(f"kumo.memoize: {err}") from None

    def key(self, cache: MemoCache, *args: object) -> str:
        epoch = self._epoch if cache.params.invalidate_with_epoch else None
        return memo_key(tuple(to_python(a) for a in args), epoch)

    def get(self, cache: MemoCache, key: str) -> tuple[bool, object]:
        hit, value = cache.get(key)
        value = restore(value, self._ctx.runtime)
        return hit, self._freezer.thaw(value)

    def put(self, cache: MemoCache, key: str, value: object) -> None:
        plain = self._freezer.freeze(value)
        check_cacheable(plain)
        cache.put(key, snapshot(plain))


MODULE = LuaModule("kumo", lambda ctx: Memoize(ctx).build())
