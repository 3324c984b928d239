-- Benchmark policy with live data: as bench/policy.lua, but every miss reads
-- one Redis hash (one HGETALL) for the definition's fields.
--
-- bench/run.py starts a redis-server, loads `bench:source:000` ... `099`
-- (harness/redis_server.py) and passes its URL in EGRESS_BENCH_REDIS_URL.
-- A name's trailing number, modulo 100, chooses its hash, so every miss of
-- the misses-redis scenario (a new name per call) reads a real hash.
local kumo = require 'kumo'
local redis = require 'redis'

local conn = redis.open {
  node = os.getenv 'EGRESS_BENCH_REDIS_URL',
  response_timeout = '2s',
}

kumo.on('get_egress_source', function(name)
  local number = tonumber(name:match '(%d+)$' or '0') % 100
  local fields = conn:query('HGETALL', string.format('bench:source:%03d', number))
  local params = { name = name, ttl = '1h' }
  for i = 1, #fields, 2 do
    params[fields[i]] = fields[i + 1]
  end
  return kumo.make_egress_source(params)
end)
