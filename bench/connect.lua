-- bench/connect.py's policy (issue 19): `ip-2` connects from 127.0.0.2,
-- `plain` without any field; every `victim-N` is a source whose address is on
-- no interface (TEST-NET-1) and that one SOURCE_UNPLUMBED report suspends for
-- an hour, so that each trial of the suspension latency has a fresh name.
local kumo = require 'kumo'

kumo.on('get_egress_source', function(name)
  if name == 'ip-2' then
    return kumo.make_egress_source { name = name, source_address = '127.0.0.2', ehlo_domain = 'ip-2.bench.example' }
  end
  if name == 'plain' then
    return kumo.make_egress_source { name = name, ehlo_domain = 'plain.bench.example' }
  end
  if name:sub(1, 7) == 'victim-' then
    return kumo.make_egress_source {
      name = name,
      source_address = '192.0.2.1',
      suspend_when_unplumbed = { duration = '1h' },
    }
  end
  return nil
end)
