--[[
shard_apply.lua: the second step of a transfer (shard_take.lua): its units join the
destination (a shard's stock, or the pool), once. The transfer id goes into the
destination's set of applied transfers in the same atomic step, so a repeat (after a lost
reply, or by the recoverer) adds nothing. Every key is in the destination's slot.

KEYS
  1  destination  hash  a shard's sale hash (field remaining) or the pool's (field pool)
  2  applied      set   ids of the transfers this destination has applied

ARGV
  1  transfer id
  2  units
  3  the destination's field (remaining, pool)

REPLIES
  {"APPLIED", units}  applied now; units: the destination's after it
  {"REPEAT", units}   applied before: nothing changed
]]

if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  return {'REPEAT', tonumber(redis.call('HGET', KEYS[1], ARGV[3])) or 0}
end
local now = redis.call('HINCRBY', KEYS[1], ARGV[3], tonumber(ARGV[2]))
redis.call('SADD', KEYS[2], ARGV[1])
return {'APPLIED', now}
