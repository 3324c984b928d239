"""`kumo.traceback`, `kumo.validation_failed` and `print`, which KumoMTA's helpers use
to report what is wrong with a configuration.

`print` is kept out of the CLI's JSON on stdout: captured while
`validate_config` runs (and `check` reports it), logged otherwise; a script
(`egress-resolver script`) prints to stdout, as kumod's does.
"""

from __future__ import annotations

import structlog

from egress_resolver.kumo_api.context import SCRIPT, ApiContext, LuaModule

_SHIM = """
local py = ...
local kumo = {}
-- Frames from the caller of kumo.traceback (level 1) outwards, with the
-- field names kumod uses (typing.lua reads source, short_src, curr_line, what).
function kumo.traceback(level)
  local frames = {}
  local depth = (level or 1) + 1
  while true do
    local info = debug.getinfo(depth, 'nSlt')
    if not info then break end
    if info.source == '<python>' or info.source == '=<python>' then
      -- The sidecar's own Lua glue (the pcall wrapper, module shims) stands
      -- where kumod has native code: show it as a C frame, as kumod would, so
      -- helpers that skip C frames blame the policy's line, not ours.
      info.what, info.source, info.short_src, info.currentline = 'C', '=[C]', '[C]', -1
    end
    frames[#frames + 1] = {
      name = info.name, name_what = info.namewhat, source = info.source,
      short_src = info.short_src, what = info.what, curr_line = info.currentline,
      line_defined = info.linedefined, last_line_defined = info.lastlinedefined,
      is_tail_call = info.istailcall,
    }
    depth = depth + 1
  end
  return frames
end
function kumo.validation_failed() py.validation_failed() end
-- Text that is not UTF-8 (binary data) cannot cross into Python as a string:
-- its bytes above 127 are printed as \\xNN escapes instead.
local function printable(text)
  if utf8.len(text) then return text end
  return (text:gsub('[\\128-\\255]', function(c) return string.format('\\\\x%02x', c:byte()) end))
end
print = function(...)
  local parts = table.pack(...)
  for i = 1, parts.n do parts[i] = tostring(parts[i]) end
  py.print(printable(table.concat(parts, '\\t', 1, parts.n)))
end
return kumo
"""


def build(ctx: ApiContext) -> object:
    """`traceback` and `validation_failed`, to add to `kumo` (and `print`, replaced)."""
    state = ctx.state
    log = structlog.get_logger("egress_resolver.policy")

    def validation_failed() -> None:
        state.validation_failed = True

    def print_line(line: str) -> None:
        if state.phase == SCRIPT:
            print(line, flush=True)
        elif state.printed is not None:
            state.printed.append(line)
        else:
            log.info("policy print", message=line)

    return ctx.shim(_SHIM, {"validation_failed": validation_failed, "print": print_line})


MODULE = LuaModule("kumo", build)
