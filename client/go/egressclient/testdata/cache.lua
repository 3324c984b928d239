-- Policy of the Go client's cache tests (cache_live_test.go).
--   <name>        -> ehlo_domain = VERSION, ttl 1 h
--   short-<x>     -> the same with ttl 10 s
--   block-<x>     -> ehlo_domain = VERSION .. '-call-' .. n (n counts these calls), ttl 0
--                    (never cached by a client); blocks until the FIFO named by the
--                    FIFO environment variable receives a line
--   missing       -> nil: NOT_FOUND
-- Pools: weighted (5/2/3), with-zero (1/0/1), empty. Tests rewrite the VERSION line.
local kumo = require 'kumo'
local VERSION = 'v1'
local calls = 0

kumo.on('get_egress_source', function(name)
  if name == 'missing' then
    return nil
  end
  if name:sub(1, 6) == 'block-' then
    calls = calls + 1
    local fifo = assert(io.open(os.getenv('FIFO'), 'r'))
    fifo:read('l')
    fifo:close()
    return kumo.make_egress_source { name = name, ehlo_domain = VERSION .. '-call-' .. calls, ttl = 0 }
  end
  local ttl = '1h'
  if name:sub(1, 6) == 'short-' then ttl = '10s' end
  return kumo.make_egress_source { name = name, ehlo_domain = VERSION, ttl = ttl }
end)

local POOLS = {
  weighted = { name = 'weighted', entries = {
    { name = 'one', weight = 5 }, { name = 'two', weight = 2 }, { name = 'three', weight = 3 } } },
  ['with-zero'] = { name = 'with-zero', entries = {
    { name = 'one', weight = 1 }, { name = 'never', weight = 0 }, { name = 'two', weight = 1 } } },
  empty = { name = 'empty', entries = {} },
}

kumo.on('get_egress_pool', function(name)
  local params = POOLS[name]
  if params == nil then
    return nil
  end
  return kumo.make_egress_pool(params)
end)
