--[[
admit.lua: the admission decision for one `POST /order`, in one atomic step.

Everything that needs shared state is decided here, so there is no window between
"check" and "take": a replay of an earlier answer, sale state, blocklists, rate limits,
the waiting room's admission (when the product has a room), key reuse, the per-user cap,
the stock decrement and the outbox entry. The blocklists and limits are lib/gate.lua's,
prepended to this script when it is loaded. A replay comes
first so a client retrying after an unknown outcome always learns it, whatever changed
since (a halt, a block, a tighter limit). Every check runs before the first write, so a
refusal, or an error, never leaves anything half done.
All keys carry the product's hash tag `{p:<productId>}`, so the script is valid on Redis
Cluster. Time comes from the Redis server (`TIME`), the same for every API instance.
Limits and sale settings are read from the sale hash on every call, so an operator's
change applies to the next request on every instance.

KEYS
  1  sale      hash    state, remaining, per_user, starts_at, ends_at (ms, 0 = none),
                       payment_window_ms (absent or 0 = reservations do not expire),
                       and per scope <s>_t (GCRA emission interval, µs; 0 or absent = no
                       limit) and <s>_b (burst), for s in ip, fp, user, global
  2  bought    hash    units bought per user id
  3  idem      hash    stored answer for (user, idempotency key): fp, status, body,
                       state (pending | done), order_id, entry, deadline
  4  outbox    stream  accepted orders not yet confirmed by Kafka; consumer group "relay"
  5  rl:ip     string  GCRA TAT (µs) of the client network
  6  rl:fp     string  GCRA TAT of the device fingerprint (or the "unknown" bucket)
  7  rl:user   string  GCRA TAT of the user
  8  rl:global string  GCRA TAT of the whole product
  9  blk:ip    string  present while the client network is blocked
 10  blk:fp    string  present while the device is blocked
 11  blk:user  string  present while the user is blocked
 12  viol      hash    violation counters of the current hour, by type (kept 25 h)
 13  res       hash    the order's reservation record (see transition.lua)
 14  deadlines zset    reserved order ids by payment deadline (ms)
 15  room      hash    the product's waiting room (see room_join.lua); absent: no room
 16  adm       hash    the user's admission from the room: token, exp (ms), used, epoch
 17  active    zset    users admitted and not yet used, by expiry (ms)

ARGV
  1  user id
  2  quantity (integer 1..10)
  3  request fingerprint (the normalized order), compared on replay
  4  order id (uuid), used only when accepted
  5  answer body (JSON of the 202), stored to replay it byte for byte
  6  event (OrderPlaced JSON), written to the outbox
  7  idempotency retention, seconds
  8  "1" to enforce rate limits, "0" when RATE_LIMIT_ENABLED=false (blocks still apply)
  9  the admission token's id (X-Admission-Token, verified by the API), or ""

REPLIES: {code, rl, ...} where rl describes the limit closest to exhaustion,
{scope, limit, remaining, reset_ms, window_s}; {"off"} when limits were evaluated and
none is configured for this sale; or {} when the script returned before the limits
(the API then applies and reports its in-process limiter).
  {"ACCEPTED", rl, remaining, entry_id, deadline}
                                                stock taken, outbox entry written, the
                                                order reserved until its payment deadline
                                                (Unix ms by Redis time; 0: the sale has no
                                                payment window)
  {"REPLAY", {}, status, body, order_id, deadline}
                                                same key and request, already handed off
                                                (deadline as accepted; absent in records
                                                written before it was kept)
  {"IN_FLIGHT", {}}                             same key and request, hand-off unconfirmed
  {"KEY_REUSED", rl}                            same key, different request (violation)
  {"SALE_NOT_FOUND", {}}                        no sale hash (never "in stock")
  {"SALE_NOT_OPEN", {}, state}                  halted, closed, scheduled or ended
  {"BLOCKED", {}, scope}                        a blocklist matched (violation)
  {"RATE_LIMITED", rl, scope, retry_after_ms}   a limit refused; nothing consumed (violation)
  {"NOT_ADMITTED", rl, why}                     the product has a room and this user holds
                                                no valid admission: why is missing (none, or
                                                an earlier room's), used, expired or closed
  {"PURCHASE_LIMIT_REACHED", rl, bought, cap}   the user's cap would be exceeded
  {"SOLD_OUT", rl, remaining}                   fewer units left than asked for
]]

local user, qty, fp = ARGV[1], tonumber(ARGV[2]), ARGV[3]

-- 1. A replay: the same (user, key, order) gets the same answer, never a second order.
local rec = redis.call('HMGET', KEYS[3], 'fp', 'state', 'status', 'body', 'order_id', 'deadline')
if rec[1] and rec[1] == fp then
  if rec[2] ~= 'done' then
    return {'IN_FLIGHT', {}}
  end
  return {'REPLAY', {}, rec[3], rec[4], rec[5], rec[6] or '0'}
end

-- 2. Sale state. A missing or incomplete sale is "not found", never "in stock".
local sale = redis.call('HMGET', KEYS[1], 'state', 'remaining', 'per_user', 'starts_at', 'ends_at',
  'ip_t', 'ip_b', 'fp_t', 'fp_b', 'user_t', 'user_b', 'global_t', 'global_b',
  'payment_window_ms')
local state, remaining = sale[1], tonumber(sale[2])
if not state or not remaining then
  return {'SALE_NOT_FOUND', {}}
end
if state ~= 'open' then
  return {'SALE_NOT_OPEN', {}, state}
end
local now_us = server_time_us()
local now_ms = math.floor(now_us / 1000)
local starts_at, ends_at = tonumber(sale[4]) or 0, tonumber(sale[5]) or 0
if now_ms < starts_at then
  return {'SALE_NOT_OPEN', {}, 'scheduled'}
end
if ends_at > 0 and now_ms >= ends_at then
  return {'SALE_NOT_OPEN', {}, 'ended'}
end

-- 3. Blocklists.
local scope = blocked({KEYS[9], KEYS[10], KEYS[11]}, KEYS[12])
if scope then
  return {'BLOCKED', {}, scope}
end

-- 4. Rate limits: evaluate every configured scope, then either refuse (consuming none)
--    or consume all. The reported limit is the one closest to exhaustion.
local rl = {}
if ARGV[8] == '1' then
  local refused, retry
  refused, retry, rl = limited({KEYS[5], KEYS[6], KEYS[7], KEYS[8]},
    {sale[6], sale[7], sale[8], sale[9], sale[10], sale[11], sale[12], sale[13]}, now_us, KEYS[12])
  if refused then
    return {'RATE_LIMITED', rl, refused, retry}
  end
end

-- 4b. The waiting room: while the product has one, only a user the room admitted may buy,
--     once, with the admission's token, before it expires.
--     An admission of an earlier room (epoch) is none.
local room = redis.call('HMGET', KEYS[15], 'state', 'epoch')
if room[1] then
  local adm = redis.call('HMGET', KEYS[16], 'token', 'exp', 'used', 'epoch')
  local why = nil
  if room[1] == 'closed' then
    why = 'closed'
  elseif not adm[1] or adm[1] ~= ARGV[9] or adm[4] ~= room[2] then
    why = 'missing'
  elseif adm[3] == '1' then
    why = 'used'
  elseif (tonumber(adm[2]) or 0) <= now_ms then
    why = 'expired'
  end
  if why then
    return {'NOT_ADMITTED', rl, why}
  end
end

-- 5. Key reuse: the same (user, key) with a different order.
if rec[1] then
  violation(KEYS[12], 'key_reused')
  return {'KEY_REUSED', rl}
end

-- 6. Per-user cap (0 = no cap). A corrupt counter stops here, before any write.
local cap = tonumber(sale[3]) or 0
local bought_raw = redis.call('HGET', KEYS[2], user)
local bought = tonumber(bought_raw) or 0
if bought_raw and not tonumber(bought_raw) then
  return redis.error_reply('corrupt bought counter for user ' .. user)
end
if cap > 0 and bought + qty > cap then
  return {'PURCHASE_LIMIT_REACHED', rl, bought, cap}
end

-- 7. Stock.
if remaining < qty then
  return {'SOLD_OUT', rl, remaining}
end

-- 8. Accept and reserve. The outbox's consumer group must exist before the first write (creating it
--    is the only step that can fail on a damaged stream). The entry is then made pending
--    for the "inflight" consumer with XCLAIM FORCE, so its idle time counts from
--    acceptance and exactly this entry is pending; the relay claims entries that stay
--    pending too long (the API died, or Kafka failed).
local group = redis.pcall('XGROUP', 'CREATE', KEYS[4], 'relay', '$', 'MKSTREAM')
if type(group) == 'table' and group.err and not string.find(group.err, 'BUSYGROUP', 1, true) then
  return redis.error_reply('outbox unusable: ' .. group.err)
end
remaining = redis.call('HINCRBY', KEYS[1], 'remaining', -qty)
redis.call('HINCRBY', KEYS[2], user, qty)
local entry = redis.call('XADD', KEYS[4], '*', 'order_id', ARGV[4], 'event', ARGV[6])
redis.call('XCLAIM', KEYS[4], 'relay', 'inflight', 0, entry, 'FORCE', 'JUSTID')
local window, deadline = tonumber(sale[14]) or 0, 0
if window > 0 then
  deadline = now_ms + window
  redis.call('ZADD', KEYS[14], deadline, ARGV[4])
end
redis.call('HSET', KEYS[13], 'user', user, 'qty', qty, 'state', 'reserved', 'deadline', deadline,
  'entry', entry)
redis.call('HSET', KEYS[3], 'fp', fp, 'state', 'pending', 'status', 202, 'body', ARGV[5],
  'order_id', ARGV[4], 'entry', entry, 'deadline', deadline)
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[7]))
if room[1] then
  redis.call('HSET', KEYS[16], 'used', 1)
  redis.call('ZREM', KEYS[17], user)
  redis.call('HINCRBY', KEYS[15], 'used', 1)
end

return {'ACCEPTED', rl, remaining, entry, deadline}
