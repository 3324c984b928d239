-- The conformance policy: every client language is checked against it.
-- The scenarios that reload rewrite the VERSION line (step "reload" with "replace").
local kumo = require 'kumo'
local VERSION = 'v1'

local POOLS = {
  weighted = { { name = 'one', weight = 5 }, { name = 'two', weight = 2 }, { name = 'three', weight = 3 } },
  ['with-zero'] = { { name = 'a', weight = 1 }, { name = 'b', weight = 0 }, { name = 'c', weight = 2 } },
  single = { { name = 'only' } },
  empty = {},
  zeros = { { name = 'a', weight = 0 }, { name = 'b', weight = 0 } },
}

kumo.on('get_egress_source', function(name)
  if name == 'gone' then
    return nil
  end
  if name == 'bad' then
    error('bad is refused by policy ' .. VERSION)
  end
  if name == 'full' then
    return kumo.make_egress_source {
      name = 'full',
      source_address = '10.1.0.1',
      ehlo_domain = 'mta.example.com',
      remote_port = 2525,
      ha_proxy_server = '127.0.0.1:5000',
      ha_proxy_source_address = '192.0.2.1',
      socks5_proxy_username = 'user',
      socks5_proxy_password = { key_data = 'hunter2' },
      ttl = '90s',
    }
  end
  if name == 'vaulted' then
    return kumo.make_egress_source {
      name = 'vaulted',
      socks5_proxy_server = '127.0.0.1:1080',
      socks5_proxy_username = 'user',
      socks5_proxy_password = {
        vault_address = 'https://vault.example:8200',
        vault_token = 's.conformance-token',
        vault_mount = 'secret',
        vault_path = 'mta/socks',
      },
      ttl = '90s',
    }
  end
  local ttl = '1h'
  if name:sub(1, 6) == 'short-' then ttl = '4s' end
  return kumo.make_egress_source { name = name, ehlo_domain = name .. '.' .. VERSION .. '.example', ttl = ttl }
end)

kumo.on('get_egress_pool', function(name)
  local entries = POOLS[name]
  if entries == nil then
    return nil
  end
  return kumo.make_egress_pool { name = name, entries = entries, ttl = '2m' }
end)
