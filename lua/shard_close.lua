--[[
shard_close.lua: the last step of a transfer (shard_take.lua), once its destination has
applied it: the transfer is marked closed and the destination may be sent another. The
record stays (closed), so a take repeated with the same id still takes nothing. Every key
is in the source's slot.

KEYS
  1  transfers  hash  <id> -> "<destination>:<units>:<open|closed>";
                      open:<destination> -> <id>

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
local dest, units = string.match(known, '^([^:]+):(%d+):')
if redis.call('HGET', KEYS[1], 'open:' .. dest) == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'open:' .. dest)
end
redis.call('HSET', KEYS[1], ARGV[1], dest .. ':' .. units .. ':closed')
return {'CLOSED'}
