-- Example policy for egress-resolver, in KumoMTA's syntax: `make run` serves it.
--
-- `ip-1` is the source from KumoMTA's make_egress_source reference page;
-- `ehlo-1`, `proxied-1` and `socks-1` are its EHLO, HA Proxy and SOCKS5
-- examples (with the `return` the reference page leaves out); every
-- other source is read from sources.toml, next to this file. Any other name
-- is an error, as in the reference page.
local kumo = require 'kumo'

-- Data files are read once, when the policy loads (and again on reload).
local data = kumo.toml_load 'sources.toml'
kumo.log_info('example policy: loaded sources.toml')

local function from_file(name)
  local entry = data.source[name]
  if entry == nil then
    return nil
  end
  local params = { name = name }
  for key, value in pairs(entry) do
    params[key] = value
  end
  return kumo.make_egress_source(params)
end

kumo.on('get_egress_source', function(source_name)
  if source_name == 'ip-1' then
    -- Make a source that will emit from 10.0.0.1
    return kumo.make_egress_source {
      name = 'ip-1',
      source_address = '10.0.0.1',
    }
  end
  if source_name == 'ehlo-1' then
    -- Emit from 10.0.0.1 and say EHLO mta1.examplecorp.com
    return kumo.make_egress_source {
      name = 'ehlo-1',
      source_address = '10.0.0.1',
      ehlo_domain = 'mta1.examplecorp.com',
    }
  end
  if source_name == 'proxied-1' then
    -- Emit from 10.0.0.1, via an HA Proxy server
    return kumo.make_egress_source {
      name = 'proxied-1',
      ha_proxy_source_address = '10.0.0.1',
      ha_proxy_server = '10.0.0.1:5000',
      ehlo_domain = 'mta1.examplecorp.com',
    }
  end
  if source_name == 'socks-1' then
    -- Emit from 10.0.0.2, via a SOCKS5 proxy server
    return kumo.make_egress_source {
      name = 'socks-1',
      socks5_proxy_source_address = '10.0.0.2',
      socks5_proxy_server = '10.0.0.1:5000',
      ehlo_domain = 'mta1.examplecorp.com',
    }
  end
  local source = from_file(source_name)
  if source then
    return source
  end
  error 'you need to do something for other source names'
end)
