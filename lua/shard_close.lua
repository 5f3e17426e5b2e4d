--[[
shard_close.lua: the last step of a refill (shard_take.lua), once the shard has applied
the transfer: the transfer is marked closed and the shard may be refilled again. The
record stays (closed), so a take repeated with the same id still takes nothing. Every key
is in the product's slot.

KEYS
  1  transfers  hash  <id> -> "<shard>:<units>:<open|closed>"; open:<shard> -> <id>

ARGV
  1  transfer id

REPLIES
  {"CLOSED"}   closed now, or before
  {"UNKNOWN"}  no such transfer
]]

local known = redis.call('HGET', KEYS[1], ARGV[1])
if not known then
  return {'UNKNOWN'}
end
local shard, units = string.match(known, '^(%d+):(%d+):')
if redis.call('HGET', KEYS[1], 'open:' .. shard) == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'open:' .. shard)
end
redis.call('HSET', KEYS[1], ARGV[1], shard .. ':' .. units .. ':closed')
return {'CLOSED'}
