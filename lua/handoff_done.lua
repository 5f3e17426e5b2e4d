--[[
handoff_done.lua: marks outbox entries of one product as delivered to Kafka.

Called by the API after Kafka acknowledged orders, for every order acknowledged while
the previous confirmation was on its way (one call per product and round trip), and by
the relay after it republished an entry that stayed pending. Running it twice for an
entry is harmless.

KEYS
  1      outbox  stream  the product's outbox (group "relay")
  2..n+1 idem    hash    the stored answer of each order, in the order of ARGV (may
                         have expired)

ARGV
  1..n   entry ids in the outbox, one per order (n at most a few thousand: they are
         unpacked into one XACK and one XDEL; the API sends at most 512)

REPLIES
  the number of entries that were still there (the others had been confirmed already)
]]

redis.call('XACK', KEYS[1], 'relay', unpack(ARGV))
local removed = redis.call('XDEL', KEYS[1], unpack(ARGV))
-- Only the record of this very entry becomes "done": a late confirmation must not mark a
-- newer order under a reused key (the old record expired) as handed off. HSET on an
-- expired record would also recreate it without a TTL.
for i, entry in ipairs(ARGV) do
  local idem = KEYS[i + 1]
  if redis.call('HGET', idem, 'entry') == entry then
    redis.call('HSET', idem, 'state', 'done')
  end
end
return removed
