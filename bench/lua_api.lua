-- The handler bench/lua_api.py times: NAME is 'OPERATION:N', N calls in a loop.
local kumo = require 'kumo'

local function bare(a, b)
  return a
end
local map = kumo.cidr.make_map {
  ['10.0.0.0/8'] = 'ten',
  ['192.168.0.0/16'] = 'private',
  ['203.0.113.0/24'] = 'doc',
}

local operations = {
  bare_lua_function = function()
    return bare('a.b.c', '.')
  end,
  string_split = function()
    return kumo.string.split('mx1.mail.example.com', '.')
  end,
  digest_sha256 = function()
    return kumo.digest.sha256('mx1.mail.example.com')
  end,
  cidr_map_lookup = function()
    return map['192.168.1.20']
  end,
}

kumo.on('get_egress_source', function(name)
  local operation, count = name:match '^(.-):(%d+)$'
  local fn = operations[operation]
  for _ = 1, tonumber(count) do
    fn()
  end
  return kumo.make_egress_source { name = name }
end)
