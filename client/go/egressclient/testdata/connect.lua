-- Policy of the Go client's live connect tests (connect_live_test.go).
--   ip-2      -> source_address 127.0.0.2, ehlo_domain mta2.example.com
--   ip-3      -> source_address 127.0.0.3, remote_port SMTP_PORT (the environment variable)
--   ip-8/ip-9 -> source_address 192.0.2.8/192.0.2.9 (TEST-NET-1: not on the host),
--                suspended for 30 s at the first EADDRNOTAVAIL
--   px-down   -> through a SOCKS5 proxy at PROXY_DOWN (nothing listens), suspended
--                at the second PROXY_UNHEALTHY within 5 minutes
--   px-silent -> through a SOCKS5 proxy at PROXY_SILENT (accepts, never answers),
--                suspended for 1 minute at the first PROXY_UNHEALTHY
--   px-v6     -> through a SOCKS5 proxy at PROXY_DOWN with socks5_proxy_source_address
--                ::1 (an IPv4 destination does not match it), suspended for 1 minute
--                at the first PROXY_UNHEALTHY reported
--   px-unix   -> through an HAProxy server at a unix path (not supported), suspended
--                for 1 minute at the first PROXY_UNHEALTHY reported
-- Pools: mixed (ip-2, ip-9, ip-3), unplumbed (ip-8, ip-9).
local kumo = require 'kumo'

local SOURCES = {
  ['ip-2'] = { source_address = '127.0.0.2', ehlo_domain = 'mta2.example.com' },
  ['ip-3'] = { source_address = '127.0.0.3', remote_port = tonumber(os.getenv('SMTP_PORT')) },
  ['ip-8'] = { source_address = '192.0.2.8', suspend_when_unplumbed = { duration = '30s' } },
  ['ip-9'] = { source_address = '192.0.2.9', suspend_when_unplumbed = { duration = '30s' } },
  ['px-down'] = {
    socks5_proxy_server = os.getenv('PROXY_DOWN'),
    socks5_proxy_source_address = '127.0.0.4',
    suspend_when_proxy_unhealthy = { trigger = { Threshold = '2/5m' }, duration = '1m' },
  },
  ['px-silent'] = {
    socks5_proxy_server = os.getenv('PROXY_SILENT'),
    socks5_proxy_source_address = '127.0.0.4',
    suspend_when_proxy_unhealthy = { duration = '1m' },
  },
  ['px-v6'] = {
    socks5_proxy_server = os.getenv('PROXY_DOWN'),
    socks5_proxy_source_address = '::1',
    suspend_when_proxy_unhealthy = { duration = '1m' },
  },
  ['px-unix'] = {
    ha_proxy_server = '/run/egress-resolver-test/haproxy.sock',
    ha_proxy_source_address = '127.0.0.4',
    suspend_when_proxy_unhealthy = { duration = '1m' },
  },
}

kumo.on('get_egress_source', function(name)
  local params = SOURCES[name]
  if params == nil then
    return nil
  end
  params.name = name
  params.ttl = '1h'
  return kumo.make_egress_source(params)
end)

local POOLS = {
  mixed = { name = 'mixed', entries = {
    { name = 'ip-2', weight = 1 }, { name = 'ip-9', weight = 1 }, { name = 'ip-3', weight = 1 } } },
  unplumbed = { name = 'unplumbed', entries = { { name = 'ip-8', weight = 1 }, { name = 'ip-9', weight = 1 } } },
}

kumo.on('get_egress_pool', function(name)
  local params = POOLS[name]
  if params == nil then
    return nil
  end
  return kumo.make_egress_pool(params)
end)
