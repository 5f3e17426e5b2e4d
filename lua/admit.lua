--[[
admit.lua: the admission decision for one `POST /order`, in one atomic step.

Everything that needs shared state is decided here, so there is no window between
"check" and "take": sale state, then idempotency, then the per-user cap, then the
stock decrement and the outbox entry. Cheapest and most common refusals come first.
All keys carry the product's hash tag `{p:<productId>}`, so the script is valid on
Redis Cluster. Time comes from the Redis server (`TIME`), the same for every API
instance.

KEYS
  1  sale     hash    state, stock, remaining, per_user, starts_at, ends_at (ms, 0 = none)
  2  bought   hash    units bought per user id
  3  idem     hash    stored answer for (user, idempotency key): fp, status, body,
                      state (pending | done), order_id, entry
  4  outbox   stream  accepted orders not yet confirmed by Kafka; consumer group "relay"

ARGV
  1  user id
  2  quantity (integer 1..10)
  3  request fingerprint (hex digest of the normalized order), compared on replay
  4  order id (uuid), used only when accepted
  5  answer body (JSON of the 202), stored to replay it byte for byte
  6  event (OrderPlaced JSON), written to the outbox
  7  idempotency retention, seconds

REPLIES (an array; element 1 is the code)
  {"ACCEPTED", remaining, entry_id}          stock taken, outbox entry written
  {"REPLAY", status, body, order_id}         same key and request, already handed off
  {"IN_FLIGHT"}                              same key and request, hand-off not confirmed yet
  {"KEY_REUSED"}                             same key, different request
  {"SALE_NOT_FOUND"}                         no sale hash (never "in stock")
  {"SALE_NOT_OPEN", state}                   halted, closed, or outside the sale window
  {"PURCHASE_LIMIT_REACHED", bought, cap}    the user's cap would be exceeded
  {"SOLD_OUT", remaining}                    fewer units left than asked for
]]

local sale_key, bought_key, idem_key, outbox_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local user, qty, fp = ARGV[1], tonumber(ARGV[2]), ARGV[3]

-- 1. Sale state. A missing or incomplete sale is "not found", never "in stock".
local sale = redis.call('HMGET', sale_key, 'state', 'remaining', 'per_user', 'starts_at', 'ends_at')
local state, remaining = sale[1], tonumber(sale[2])
if not state or not remaining then
  return {'SALE_NOT_FOUND'}
end
if state ~= 'open' then
  return {'SALE_NOT_OPEN', state}
end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local starts_at, ends_at = tonumber(sale[4]) or 0, tonumber(sale[5]) or 0
if now_ms < starts_at then
  return {'SALE_NOT_OPEN', 'scheduled'}
end
if ends_at > 0 and now_ms >= ends_at then
  return {'SALE_NOT_OPEN', 'ended'}
end

-- (Blocklists and rate limits slot in here: they must refuse before anything is taken.)

-- 2. Idempotency: the same (user, key) gets the same answer, never a second order.
local rec = redis.call('HMGET', idem_key, 'fp', 'state', 'status', 'body', 'order_id')
if rec[1] then
  if rec[1] ~= fp then
    return {'KEY_REUSED'}
  end
  if rec[2] ~= 'done' then
    return {'IN_FLIGHT'}
  end
  return {'REPLAY', rec[3], rec[4], rec[5]}
end

-- 3. Per-user cap (0 = no cap).
local cap = tonumber(sale[3]) or 0
local bought = tonumber(redis.call('HGET', bought_key, user)) or 0
if cap > 0 and bought + qty > cap then
  return {'PURCHASE_LIMIT_REACHED', bought, cap}
end

-- 4. Stock.
if remaining < qty then
  return {'SOLD_OUT', remaining}
end
remaining = redis.call('HINCRBY', sale_key, 'remaining', -qty)
redis.call('HINCRBY', bought_key, user, qty)

-- 5. Outbox entry, delivered at once to the "inflight" consumer of group "relay", so the
--    entry is pending from this moment and its idle time counts from acceptance. The
--    relay claims entries that stay pending too long (the API died, or Kafka failed).
if redis.call('EXISTS', outbox_key) == 0 then
  redis.call('XGROUP', 'CREATE', outbox_key, 'relay', '$', 'MKSTREAM')
end
local entry = redis.call('XADD', outbox_key, '*', 'order_id', ARGV[4], 'event', ARGV[6])
redis.call('XREADGROUP', 'GROUP', 'relay', 'inflight', 'COUNT', 1, 'STREAMS', outbox_key, '>')

redis.call('HSET', idem_key, 'fp', fp, 'state', 'pending', 'status', 202, 'body', ARGV[5],
  'order_id', ARGV[4], 'entry', entry)
redis.call('EXPIRE', idem_key, tonumber(ARGV[7]))

return {'ACCEPTED', remaining, entry}
