-- The SOCKS5 scenario's policy (issue 19): sources that go through the SOCKS5
-- test servers (tests/peers/socks5.py), which bind socks5_proxy_source_address
-- and connect onward from it, as kumod asks of a SOCKS5 proxy.
local kumo = require 'kumo'

local SOURCES = {
  -- no authentication
  ['socks-4'] = {
    socks5_proxy_server = '{socks5}',
    socks5_proxy_source_address = '127.0.0.4',
  },
  -- RFC 1929, the password inline
  ['socks-auth-6'] = {
    socks5_proxy_server = '{socks5auth}',
    socks5_proxy_source_address = '127.0.0.6',
    socks5_proxy_username = 'alice',
    socks5_proxy_password = { key_data = 's3cret' },
  },
  -- the wrong password
  ['socks-wrong'] = {
    socks5_proxy_server = '{socks5auth}',
    socks5_proxy_source_address = '127.0.0.6',
    socks5_proxy_username = 'alice',
    socks5_proxy_password = { key_data = 'nope' },
  },
  -- a proxy that refuses every BIND
  ['socks-refused'] = {
    socks5_proxy_server = '{socks5refuse}',
    socks5_proxy_source_address = '127.0.0.4',
  },
  -- an address the proxy cannot bind (TEST-NET-1, on no interface)
  ['socks-unplumbed'] = {
    socks5_proxy_server = '{socks5}',
    socks5_proxy_source_address = '192.0.2.1',
  },
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
