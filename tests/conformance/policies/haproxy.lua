-- The HAProxy scenario's policy (issue 19): a source that goes through the
-- proxy guide's HAProxy, which connects onward from ha_proxy_source_address.
local kumo = require 'kumo'

kumo.on('get_egress_source', function(name)
  if name == 'ha-3' then
    return kumo.make_egress_source {
      name = 'ha-3',
      ha_proxy_server = '{haproxy}',
      ha_proxy_source_address = '127.0.0.3',
      ehlo_domain = 'ha-3.mta.example',
    }
  end
  return nil
end)
