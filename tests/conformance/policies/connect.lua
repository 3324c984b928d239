-- The connect scenarios' policy (issue 19): sources that connect directly.
-- The driver puts the peers' addresses in for {smtp.port} (scenario_peers.py).
local kumo = require 'kumo'

local SOURCES = {
  -- from 127.0.0.2, with its own EHLO name
  ['ip-2'] = { source_address = '127.0.0.2', ehlo_domain = 'ip-2.mta.example' },
  -- remote_port replaces whatever port the destination says
  ['port-fix'] = { remote_port = {smtp.port}, ehlo_domain = 'port-fix.mta.example' },
  -- no ehlo_domain: the client says the host name
  ['plain'] = {},
}

kumo.on('get_egress_source', function(name)
  local fields = SOURCES[name]
  if fields == nil then
    return nil
  end
  fields.name = name
  return kumo.make_egress_source(fields)
end)

kumo.on('get_egress_pool', function(name)
  if name == 'direct' then
    return kumo.make_egress_pool { name = 'direct', entries = { { name = 'ip-2' } } }
  end
  return nil
end)
