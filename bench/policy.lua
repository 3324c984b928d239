-- Benchmark policy: answers every name, so that any name resolves.
--
-- The hits scenario asks for 100 names that stay cached (ttl 1 h); the
-- misses scenario asks for a new name on every call, so this handler runs
-- once per call. The definition has the size of a typical real one.
local kumo = require 'kumo'

kumo.on('get_egress_source', function(name)
  return kumo.make_egress_source {
    name = name,
    source_address = '10.0.0.1',
    ehlo_domain = 'mta1.bench.example',
    ttl = '1h',
  }
end)
