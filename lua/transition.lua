--[[
transition.lua: ends one reservation, in one atomic step.

An accepted order is `reserved` (admit.lua wrote its record). This script moves it to
exactly one of `paid`, `cancelled` or `expired`, only from `reserved`, so of a payment
and an expiry that race, or a cancel and a payment, exactly one wins and the other
learns the state it lost to. A cancel or an expiry gives the units back, once, because
the record has left `reserved`: the buyer's count for the per-user cap shrinks now, and
the units move to the sale's `returning` count, to reach `remaining` only once the worker
has taken them off `sales.sold` in PostgreSQL (lua/release.lua). Resold earlier, a unit's
new order could reach PostgreSQL before its return (they travel on different partitions)
and trip `CHECK (sold <= stock)`. Whatever is asked, an order past its payment deadline
(by Redis server time, `TIME`) can only expire: a payment that comes late expires it and
is told so. The event is written to the product's outbox like an acceptance, so the API,
or its relay, hands it to Kafka keyed by the order id; it must not overtake the order's
placement there, so an order whose placement entry is still pending in the outbox (not
yet acknowledged by Kafka) does not move yet (IN_FLIGHT: retry shortly).
All keys carry the product's hash tag, so the script is valid on Redis Cluster.

KEYS
  1  sale       hash        the sale (see admit.lua); `returning` grows by returned units
  2  bought     hash        units bought per user id
  3  res        hash        the order's reservation: user, qty, state (reserved | paid |
                            cancelled | expired), deadline (ms, 0 = none), entry (the
                            placement's outbox entry); once ended also at (ms), reason
  4  outbox     stream      the product's outbox (group "relay")
  5  deadlines  sorted set  reserved order ids by deadline

ARGV
  1  order id (uuid)
  2  product id
  3  requested state: paid | cancelled | expired (expired only once due)
  4  reason, stored and carried by the event (`payment`, `shopper`, `expiry`, or an
     operator's words)
  5  retention of the ended record, seconds

REPLIES
  {"MOVED", state, returning, entry, event}  moved now to state (`expired` when the
                                             deadline had passed, whatever was asked);
                                             the event is in the outbox under entry;
                                             returning: units of the sale on their way
                                             back
  {"SAME", state}                            already in the requested state (a repeat)
  {"NOT_RESERVED", state}                    already ended otherwise
  {"IN_FLIGHT"}                              the placement is not yet acknowledged by
                                             Kafka; nothing changed, retry shortly
  {"NOT_DUE", deadline}                      expiry asked before the deadline (or there
                                             is none); nothing changed
  {"ORDER_NOT_FOUND"}                        no reservation record for this order here
]]

local rec = redis.call('HMGET', KEYS[3], 'user', 'qty', 'state', 'deadline', 'entry')
local user, qty, state = rec[1], tonumber(rec[2]), rec[3]
local deadline, placement = tonumber(rec[4]) or 0, rec[5]
if not user or not qty or not state then
  return {'ORDER_NOT_FOUND'}
end
local want = ARGV[3]
if state ~= 'reserved' then
  -- A write even here: the caller answers with this state only once the replicas have
  -- acknowledged this write, and so every earlier one, the move itself included (it may
  -- have been made, and answered 503, by a call whose WAIT fell short).
  redis.call('HINCRBY', KEYS[3], 'asked', 1)
  if state == want then
    return {'SAME', state}
  end
  return {'NOT_RESERVED', state}
end

local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local due = deadline > 0 and now_ms >= deadline
if want == 'expired' and not due then
  return {'NOT_DUE', deadline}
end
if placement and #redis.call('XPENDING', KEYS[4], 'relay', placement, placement, 1) > 0 then
  return {'IN_FLIGHT'}
end

local to = want
if due then
  to = 'expired'
end
local returning = tonumber(redis.call('HGET', KEYS[1], 'returning')) or 0
if to ~= 'paid' then
  returning = redis.call('HINCRBY', KEYS[1], 'returning', qty)
  -- The field stays (at 0): the sold-out fast path never answers for a user listed
  -- here, whose request may be the retry of this very order.
  redis.call('HINCRBY', KEYS[2], user, -qty)
end
redis.call('HSET', KEYS[3], 'state', to, 'at', now_ms, 'reason', ARGV[4])
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[5]))
redis.call('ZREM', KEYS[5], ARGV[1])

local event = '{"schema_version":1,"type":"OrderTransitioned","order_id":' .. cjson.encode(ARGV[1])
  .. ',"product_id":' .. cjson.encode(ARGV[2]) .. ',"user_id":' .. cjson.encode(user)
  .. ',"quantity":' .. string.format('%d', qty) .. ',"state":"' .. to .. '","at_ms":'
  .. string.format('%.0f', now_ms) .. ',"reason":' .. cjson.encode(ARGV[4]) .. '}'
local entry = redis.call('XADD', KEYS[4], '*', 'order_id', ARGV[1], 'event', event)
redis.call('XCLAIM', KEYS[4], 'relay', 'inflight', 0, entry, 'FORCE', 'JUSTID')
return {'MOVED', to, returning, entry, event}
