-- The policy of the client-behaviour scenarios (docs/clients/spec.md): names say
-- how their definition behaves, so that one policy serves every scenario.
--
--   gone*                 nil: NOT_FOUND / SOURCE_NOT_FOUND
--   bad*                  an error: FAILED_PRECONDITION / HANDLER_ERROR
--   slow<N>-*             the handler waits N ms (kumo.sleep: other handlers run meanwhile)
--   later-slow-*          answers at once the first time, then waits 2 s at every call
--   short-*               ttl 1 s (expires during a scenario)
--   nocache-*             ttl 0: no cache keeps it, so each lookup is a call
--   anything else         ttl 1 h
-- Prefixes combine in this order: `slow1000-nocache-x`, `slow1000-gone`.
local kumo = require 'kumo'

local answered = {}

kumo.on('get_egress_source', function(name)
  local rest = name
  local delay = rest:match '^slow(%d+)%-'
  if delay then
    kumo.sleep(tonumber(delay) / 1000)
    rest = rest:gsub('^slow%d+%-', '')
  end
  if rest:sub(1, 11) == 'later-slow-' and answered[name] then
    kumo.sleep(2)
  end
  if rest:sub(1, 4) == 'gone' then
    return nil
  end
  if rest:sub(1, 3) == 'bad' then
    error(name .. ' is refused by the policy')
  end
  local ttl = '1h'
  if rest:sub(1, 6) == 'short-' or rest:sub(1, 11) == 'later-slow-' then
    ttl = '1s'
  elseif rest:sub(1, 8) == 'nocache-' then
    ttl = 0
  end
  answered[name] = true
  return kumo.make_egress_source { name = name, ehlo_domain = name .. '.example', ttl = ttl }
end)

kumo.on('get_egress_pool', function(name)
  if name ~= 'pair' then
    return nil
  end
  return kumo.make_egress_pool {
    name = name,
    entries = { { name = 'p-1', weight = 1 }, { name = 'p-2', weight = 1 } },
    ttl = '1h',
  }
end)
