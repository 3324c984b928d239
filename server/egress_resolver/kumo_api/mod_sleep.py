"""`kumo.sleep(seconds)` (crates/mod-time registers it on `kumo` too; kumod deprecates it
for `kumo.time.sleep`). The handler waits as it waits for I/O: its coroutine
yields and other handlers run meanwhile (mod_time.sleep_request).
"""

from __future__ import annotations

from egress_resolver.kumo_api.context import ApiContext, LuaModule
from egress_resolver.kumo_api.mod_time import sleep_request

_SHIM = """
local py, await = ...
return { sleep = function(seconds) return await(py.sleep('kumo.sleep', seconds)) end }
"""


def build(ctx: ApiContext) -> object:
    """`sleep`, to add to `kumo`."""
    return ctx.shim(_SHIM, {"sleep": sleep_request})


MODULE = LuaModule("kumo", build)
