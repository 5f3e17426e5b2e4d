--[[
release.lua: puts a cancelled or expired order's units back on sale, once.

Called by the worker after PostgreSQL committed the order's transition (so `sales.sold`
is already lower by these units): the units move from the sale's `returning` count
(transition.lua put them there) to `remaining`, where the next shopper can buy them.
Called again for the same order (a redelivered event) it changes nothing: the
reservation record remembers the release.

KEYS
  1  sale  hash  the sale (see admit.lua): returning, remaining, and released (units put
                 back on sale so far: the sold-out fast path reloads its buyers when it
                 changes, since they may have been resold)
  2  res   hash  the order's reservation record (see transition.lua)

REPLIES
  1  released now
  0  nothing to release: already released, not a return, or no record
]]

local rec = redis.call('HMGET', KEYS[2], 'state', 'qty', 'released')
local state, qty = rec[1], tonumber(rec[2])
if (state ~= 'cancelled' and state ~= 'expired') or not qty or rec[3] then
  return 0
end
redis.call('HSET', KEYS[2], 'released', 1)
redis.call('HINCRBY', KEYS[1], 'returning', -qty)
redis.call('HINCRBY', KEYS[1], 'remaining', qty)
redis.call('HINCRBY', KEYS[1], 'released', qty)
return 1
