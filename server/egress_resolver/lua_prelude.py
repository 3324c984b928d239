"""The Lua side of PolicyHost: module path, the `kumo` global, and the time budget.

`PRELUDE` runs first in every new runtime with the `kumo` table, the module
search path and the hook interval, and returns the `budget` functions the
host calls handlers through.
"""

HOOK_EVERY = 1000
"""Instructions between deadline checks (~10 µs of Lua)."""

PRELUDE = """
local kumo, search_path, hook_every, track_file = ...
package.path = search_path .. package.path
package.loaded.kumo = kumo
-- Note the file of every Lua module `require` loads, so that changing it
-- reloads the policy; returning nothing lets the standard searcher load it.
table.insert(package.searchers, 2, function(name)
  local path = package.searchpath(name, package.path)
  if path then track_file(path) end
end)
_G.kumo = kumo
python = nil

-- The time budget: a count hook checks the clock every `hook_every`
-- instructions and raises once the deadline has passed. pcall, xpcall and
-- coroutines would swallow that error and let a runaway loop go on, so they
-- are wrapped to raise it again, and new coroutines inherit the hook.
local sethook, error, select = debug.sethook, error, select
local raw_pcall, raw_xpcall = pcall, xpcall
local raw_create, raw_resume, raw_status = coroutine.create, coroutine.resume, coroutine.status
local EXPIRED = 'handler time budget exhausted'
local hook, expired = nil, false

local function reraise_if_expired(...)
  if expired then error(EXPIRED, 0) end
  return ...
end
pcall = function(...) return reraise_if_expired(raw_pcall(...)) end
xpcall = function(...) return reraise_if_expired(raw_xpcall(...)) end
coroutine.create = function(fn)
  local co = raw_create(fn)
  if hook then sethook(co, hook, '', hook_every) end
  return co
end
coroutine.resume = function(...) return reraise_if_expired(raw_resume(...)) end
coroutine.wrap = function(fn)
  local co = coroutine.create(fn)
  return function(...)
    local function unwrap(ok, ...)
      if not ok then error((...), 0) end
      return ...
    end
    return unwrap(coroutine.resume(co, ...))
  end
end

local budget = {}
function budget.call(clock, seconds, fn, ...)
  local deadline = clock() + seconds
  expired = false
  hook = function()
    if expired or clock() > deadline then
      expired = true
      error(EXPIRED, 0)
    end
  end
  sethook(hook, '', hook_every)
  return fn(...)
end
function budget.clear()
  hook = nil
  sethook()
end
function budget.load(path)
  local chunk, err = loadfile(path)
  if not chunk then error(err, 0) end
  return chunk
end
return budget
"""
