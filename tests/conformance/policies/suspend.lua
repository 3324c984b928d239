-- The suspension scenarios' policy (issue 19): a source whose address is not
-- on the host (192.0.2.1, TEST-NET-1), proxies that are down ({closed}: a
-- loopback port where nothing listens), and pools over them.
local kumo = require 'kumo'

local SOURCES = {
  ['ip-9'] = {
    source_address = '192.0.2.1',
    suspend_when_unplumbed = { duration = '30s' },
  },
  ['ip-8'] = {
    -- unplumbed too, but no rule: it fails every time and is never suspended
    source_address = '192.0.2.8',
  },
  ['ip-2'] = { source_address = '127.0.0.2' },
  ['px-down'] = {
    socks5_proxy_server = '{closed}',
    socks5_proxy_source_address = '127.0.0.7',
    suspend_when_proxy_unhealthy = { duration = '30s' },
  },
  ['ha-down'] = {
    ha_proxy_server = '{closed}',
    ha_proxy_source_address = '127.0.0.7',
    suspend_when_proxy_unhealthy = { trigger = { Threshold = '2/1m' }, duration = '30s' },
  },
}

local POOLS = {
  mixed = { { name = 'ip-9', weight = 1 }, { name = 'ip-2', weight = 1 } },
  unplumbed = { { name = 'ip-9' } },
  proxies = { { name = 'px-down', weight = 1 }, { name = 'ip-2', weight = 1 } },
}

kumo.on('get_egress_source', function(name)
  local fields = SOURCES[name]
  if fields == nil then
    return nil
  end
  fields.name = name
  fields.ehlo_domain = name .. '.mta.example'
  return kumo.make_egress_source(fields)
end)

kumo.on('get_egress_pool', function(name)
  local entries = POOLS[name]
  if entries == nil then
    return nil
  end
  return kumo.make_egress_pool { name = name, entries = entries }
end)
