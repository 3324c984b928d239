"""The Lua side of PolicyHost: module path, the `kumo` global, the time budget, and
handler coroutines that wait on I/O.

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
--
-- Handlers run as coroutines (budget.spawn / budget.step) so that one can
-- wait on I/O while others run: an I/O function yields `IO, request` to
-- the host, which performs the request off the Lua thread and resumes the
-- coroutine with `ok, value`. Only one coroutine runs at a time, so the
-- deadline of the one running is a single variable set at each step.
local sethook, error, select = debug.sethook, error, select
local raw_pcall, raw_xpcall = pcall, xpcall
local raw_create, raw_resume = coroutine.create, coroutine.resume
local raw_yield, isyieldable = coroutine.yield, coroutine.isyieldable
local EXPIRED = 'handler time budget exhausted'
local IO = setmetatable({}, { __name = 'io request' })
local clock, deadline, expired, block_on = nil, nil, false, nil
local inline, on_stop = false, nil

local function hook()
  if expired or (deadline and clock() > deadline) then
    expired = true
    error(EXPIRED, 0)
  end
end

local function reraise_if_expired(...)
  if expired then error(EXPIRED, 0) end
  return ...
end
pcall = function(...) return reraise_if_expired(raw_pcall(...)) end
xpcall = function(...) return reraise_if_expired(raw_xpcall(...)) end
coroutine.create = function(fn)
  local co = raw_create(fn)
  sethook(co, hook, '', hook_every)
  return co
end

-- A handler run inline on the event loop (runtime/dispatch.py) must not block
-- it: a call that may block the thread (Lua's io and os, loading code, the
-- kumo functions the host guards) first moves the handler to the Lua thread:
-- it waits for the host's MOVE request, which the host answers by resuming it
-- there. Where it cannot yield (inside a C function such as table.sort), it
-- is stopped as an exhausted budget would stop it, and the host runs it again
-- from its start on the Lua thread.
local MOVE = nil
local function guarded(fn)
  return function(...)
    if inline then
      if isyieldable() then
        raw_yield(IO, MOVE)
      else
        on_stop()
        expired = true
        error(EXPIRED, 0)
      end
    end
    return fn(...)
  end
end
local function guard_all(tbl, except)
  for k, v in pairs(tbl) do
    if not except[k] and type(v) == 'function' then tbl[k] = guarded(v) end
  end
end
guard_all(io, { type = true })
guard_all(getmetatable(io.stdout).__index, {})
guard_all(os, { clock = true, date = true, difftime = true, getenv = true, time = true })
for _, k in ipairs { 'require', 'dofile', 'loadfile' } do _G[k] = guarded(_G[k]) end

-- Wait for an I/O request: yield it to the host, or, where no yield can
-- reach the host (load time, a C function such as table.sort in between),
-- have the host block this thread until it is done.
local function wait_for(request)
  if isyieldable() then return raw_yield(IO, request) end
  return block_on(request)
end

-- A policy's own coroutine that waits on I/O yields the request to the
-- resume below, which passes it on and hands the outcome back in.
local function forward(co, ok, ...)
  if ok and (...) == IO then
    return forward(co, raw_resume(co, wait_for((select(2, ...)))))
  end
  return ok, ...
end
coroutine.resume = function(co, ...) return reraise_if_expired(forward(co, raw_resume(co, ...))) end
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

local budget = { IO = IO }
-- Load-time code runs on the main thread, under a budget of `seconds`
-- (lifecycle.py: what it creates outlives it, which a coroutine's objects must not).
function budget.call(clock_fn, seconds, fn, ...)
  clock = clock_fn
  deadline = clock() + seconds
  expired = false
  sethook(hook, '', hook_every)
  return fn(...)
end
function budget.clear()
  deadline = nil
  sethook()
end
function budget.load(path)
  local chunk, err = loadfile(path)
  if not chunk then error(err, 0) end
  return chunk
end
function budget.set_block_on(fn) block_on = fn end
function budget.set_on_stop(fn, move) on_stop, MOVE = fn, move end
budget.guarded = guarded
-- Stop the running call as its budget would (an inline call that must block).
function budget.expire() expired = true end

-- `await(request [, level])`: what the kumo_api modules call; raises the error
-- the request failed with, blaming the policy's line: the caller of `await`
-- when it is tail-called (level 2), or `level` for a module function that
-- does more after it (3: the caller of that function).
function budget.await(request, level)
  local ok, value = wait_for(request)
  if not ok then error(value, level or 2) end
  return value
end

-- A handler's coroutine, boxed in a table: lupa hands a Lua thread to
-- Python as a function, and a table comes back as itself.
function budget.spawn(fn)
  local co = raw_create(fn)
  sethook(co, hook, '', hook_every)
  return { co }
end

-- Run `co` until it yields an I/O request or ends, under `until_` (an
-- absolute clock reading). Returns 'io', request; 'done', the handler's
-- results; or 'memory' when the memory cap was hit. Any other error is
-- raised again here, on the main thread, so that a Python exception raised
-- inside comes back to Python as itself.
--
-- A step may run inside another (kumo.invoke_* runs the invoked handler as a
-- coroutine of its own, lua_host.py): the running call's deadline, inline
-- flag and main-thread hook are put back when it returns. An exhausted budget
-- stays exhausted: the running call stops too.
local raw_status = coroutine.status
local function finish(box, outer_deadline, outer_inline, ok, ...)
  deadline, inline = outer_deadline, outer_inline
  if deadline == nil then sethook() end
  local co = box[1]
  if ok and (...) == IO then return 'io', (select(2, ...)) end
  box[1] = nil -- ended: let its stack be collected even while Python holds the box
  if ok then
    if raw_status(co) == 'suspended' then
      error('coroutine.yield() was called outside a coroutine the policy created', 0)
    end
    return 'done', ...
  end
  local err = ...
  if err == 'not enough memory' then return 'memory' end
  if expired then error(EXPIRED, 0) end
  error(err, 0)
end
function budget.step(clock_fn, until_, inline_, box, ...)
  local co = box[1]
  local outer_deadline, outer_inline = deadline, inline
  clock, deadline, expired, inline = clock_fn, until_, false, inline_
  sethook(hook, '', hook_every) -- for Lua functions Python calls meanwhile (main thread)
  return finish(box, outer_deadline, outer_inline, raw_resume(co, ...))
end
return budget
"""
