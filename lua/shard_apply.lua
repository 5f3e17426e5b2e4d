--[[
shard_apply.lua: the second step of a refill (shard_take.lua): the transfer's units join
the shard's stock, once. The transfer id goes into the shard's set of applied transfers in
the same atomic step, so a repeat (after a lost reply, or by the recoverer) adds nothing.
Every key is in the shard's slot.

KEYS
  1  shard    hash  the shard's sale (field remaining)
  2  applied  set   ids of the transfers this shard has applied

ARGV
  1  transfer id
  2  units

REPLIES
  {"APPLIED", remaining}  applied now
  {"REPEAT", remaining}   applied before: nothing changed
]]

if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  return {'REPEAT', tonumber(redis.call('HGET', KEYS[1], 'remaining')) or 0}
end
local remaining = redis.call('HINCRBY', KEYS[1], 'remaining', tonumber(ARGV[2]))
redis.call('SADD', KEYS[2], ARGV[1])
return {'APPLIED', remaining}
