-- A policy whose sources live in Redis: one hash per source, `source:<name>`,
-- whose fields are make_egress_source's keys. Many sidecars can share one
-- Redis (or a Redis Cluster: node = { 'redis://a:6379', 'redis://b:6379' }).
--   load-sample-data.py loads three sources; then
--   egress-resolver serve --policy examples/redis/policy.lua
-- The same policy runs in kumod unchanged.
local redis = require 'redis'

local conn = redis.open {
  node = os.getenv 'EGRESS_REDIS_URL' or 'redis://127.0.0.1:6379/',
  connect_timeout = '500ms',
  response_timeout = '500ms',
}

local NUMBERS = { remote_port = true, ttl = true }

kumo.on('get_egress_source', function(name)
  local fields = conn:query('HGETALL', 'source:' .. name) -- { k1, v1, k2, v2, ... }
  if #fields == 0 then
    return nil -- NOT_FOUND
  end
  local params = { name = name }
  for i = 1, #fields, 2 do
    local key, value = fields[i], fields[i + 1]
    params[key] = NUMBERS[key] and tonumber(value) or value
  end
  return kumo.make_egress_source(params)
end)
