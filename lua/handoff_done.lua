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
-- Only the record of this very entry becomes "done": a late confirmation must not mark a
-- newer order under a reused key (the old record expired) as handed off. HSET on an
-- expired record would also recreate it without a TTL.
if redis.call('HGET', KEYS[2], 'entry') == ARGV[1] then
  redis.call('HSET', KEYS[2], 'state', 'done')
end
return removed
