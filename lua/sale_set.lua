--[[
sale_set.lua: changes fields of an existing sale (state, limits), never creating one.

Used by `flashctl sale halt|resume`, `flashctl limits set`. The admission script reads
the sale hash on every call, so the change applies to the next request on every API
instance.

KEYS
  1  sale  hash  the sale (see admit.lua)

ARGV
  field, value, field, value, …

REPLIES
  1  changed
  0  no such sale (nothing written)
]]

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
