--[[
handoff_done.lua: marks one outbox entry as delivered to Kafka.

Called by the API right after Kafka acknowledged the order, and by the relay after it
republished an entry that stayed pending. Running it twice is harmless.

KEYS
  1  outbox  stream  the product's outbox (group "relay")
  2  idem    hash    the stored answer of the order (may have expired)

ARGV
  1  entry id in the outbox

REPLIES
  1 if the entry was still there, 0 if it had been confirmed already
]]

redis.call('XACK', KEYS[1], 'relay', ARGV[1])
local removed = redis.call('XDEL', KEYS[1], ARGV[1])
-- HSET on an expired record would recreate it without a TTL, so touch it only if it exists.
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'state', 'done')
end
return removed
