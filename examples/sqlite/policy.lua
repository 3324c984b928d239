-- A policy whose sources are rows of an SQLite table (sources.db, next to
-- this file; load-sample-data.py creates it):
--   egress-resolver serve --policy examples/sqlite/policy.lua
-- The same policy runs in kumod unchanged (there, relative paths are taken
-- from kumod's working directory; here from the policy's directory).
local sqlite = require 'sqlite'

local db = sqlite.open('sources.db', 500) -- wait up to 500 ms for a writer's lock

kumo.on('get_egress_source', function(name)
  -- Several columns: a list of row tables; a NULL column is a missing key.
  local rows = db:execute(
    'SELECT name, source_address, ehlo_domain, remote_port, ttl FROM sources WHERE name = ?',
    name
  )
  if #rows == 0 then
    return nil -- NOT_FOUND
  end
  return kumo.make_egress_source(rows[1])
end)
