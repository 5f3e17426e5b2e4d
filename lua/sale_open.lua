--[[
sale_open.lua: creates a product's sale in Redis, once.

Used by `flashctl sale open` after the sale row exists in PostgreSQL. Refuses to
overwrite an existing sale, so a second `open` can never reset stock that was already
taken. A sharded sale (`--shards N`) calls it once per shard (its units in `remaining`,
starting at 0) and then once on the product's keys (its units in `pool`, no `remaining`,
so an admission on the product's keys finds no sale).

KEYS
  1  sale    hash    the sale (see admit.lua)
  2  outbox  stream  the product's outbox; its consumer group "relay" is created here

ARGV
  1  stock (units)
  2  per-user cap (0 = none)
  3  starts_at, ms since the epoch (0 = now)
  4  ends_at, ms since the epoch (0 = no end)
  5  units on sale (normally = stock; less when `sale recover` rebuilds from PostgreSQL)
  6  state to create the sale in (open | halted)
  7  the field holding those units: remaining (an unsharded sale, a shard) or pool
  8… further field, value pairs (the rate limits: ip_t, ip_b, fp_t, …; a sharded
     sale's layout)

REPLIES
  1  created
  0  a sale already exists (nothing changed)
]]

if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1],
  'state', ARGV[6],
  'stock', ARGV[1],
  ARGV[7], ARGV[5],
  'per_user', ARGV[2],
  'starts_at', ARGV[3],
  'ends_at', ARGV[4])
for i = 8, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[2], 'relay', '$', 'MKSTREAM')
end
return 1
