-- Soak policy: the name decides the outcome, so ghz's random names mix them.
--   s-0  .. s-99   hits (ttl 1h)          s-100 .. s-149  misses every time (ttl 0)
--   s-150 .. s-159 policy error           s-160 .. s-169  not found
--   flood-*        a unique name each: cached until LRU evicts it
kumo.on('get_egress_source', function(name)
  local n = tonumber(name:match('^s%-(%d+)$'))
  if n == nil then
    return kumo.make_egress_source { name = name, source_address = '10.9.0.1' }
  end
  if n >= 160 then return nil end
  if n >= 150 then error('soak: deliberate policy error') end
  local ttl = '1h'
  if n >= 100 then ttl = 0 end
  return kumo.make_egress_source { name = name, source_address = '10.0.0.1', ttl = ttl }
end)
