--[[
room_claim.lua: a waiter whose turn has come takes an admission, once.

Allowed once the ticket's position is released (position <= served) and within the claim
window after its release; a hard limit (GCRA at the room's rate and burst) on claims
guarantees the product never sees more admissions than configured, whatever the drain
released. The admission record is what admit.lua checks when the order comes; it names
the admission token's id, so a token without its record (revoked, another epoch) buys
nothing. A repeat of a claim returns the same admission. Every key is in the product's
slot. On a sharded sale admit.lua runs on the buyer's home shard: the API then copies
the admission there (room_grant.lua), again on every repeat.

KEYS
  1  room        hash    the room (lib/room.lua)
  2  tickets     hash    user -> "arrival:device"
  3  releases    zset    served by time (ms)
  4  claimed     zset    users who claimed, by position
  5  active      zset    users admitted and not yet used, by expiry (ms)
  6  claim_rate  string  GCRA TAT (µs) of the room's claims
  7  adm         hash    this user's admission: token, exp (ms), used, epoch
  8  sale        hash    the sale (admit.lua): remaining, returning, limit fields (a
                       sharded sale's product hash: no remaining; the room's `units`,
                       the drain's census, stand for them)
  9-12  rl:ip, rl:fp, rl:user, rl:global
 13-15  blk:ip, blk:fp, blk:user
 16  viol        hash    violation counters of the hour

ARGV
  1  user id
  2  device id
  3  the ticket's epoch
  4  the ticket's arrival number
  5  the new admission's token id (16 hex digits)
  6  seed for the opening, should it happen now
  7  "1" to enforce rate limits

REPLIES: {code, rl, ...}
  {"ADMITTED", rl, token_id, exp_ms}      admitted (now, or the same admission again)
  {"ROOM_NOT_FOUND", {}} {"ROOM_CLOSED", {}}
  {"NOT_YOUR_TICKET", {}}                 no ticket of this user, device and epoch here
  {"BLOCKED", {}, scope} {"RATE_LIMITED", rl, scope, retry_after_ms}
  {"NOT_YET_ADMITTED", rl, position, served}   not released yet (or the room not open)
  {"CLAIM_EXPIRED", rl, position}         released, but the claim window has passed
  {"USED", rl}                            this user's admission was used already
  {"SOLD_OUT", rl}                        no unit left nor on its way back
  {"ROOM_THROTTLED", rl, retry_after_ms}  claims are coming faster than the room's rate
]]

local user, device, arrival = ARGV[1], ARGV[2], tonumber(ARGV[4])
local room = redis.call('HMGET', KEYS[1], 'state', 'epoch', 'seed', 'cohort', 'served',
  'claim_window_ms', 'rate', 'burst')
local state = room[1]
if not state then
  return {'ROOM_NOT_FOUND', {}}
end
if state == 'closed' then
  return {'ROOM_CLOSED', {}}
end
if room[2] ~= ARGV[3] or redis.call('HGET', KEYS[2], user) ~= arrival .. ':' .. device then
  return {'NOT_YOUR_TICKET', {}}
end
local now = server_time_us()
local now_ms = math.floor(now / 1000)
local scope = blocked({KEYS[13], KEYS[14], KEYS[15]}, KEYS[16])
if scope then
  return {'BLOCKED', {}, scope}
end
local rl = {}
if ARGV[7] == '1' then
  local limits = redis.call('HMGET', KEYS[8], unpack(LIMIT_FIELDS))
  local refused, retry
  refused, retry, rl = limited({KEYS[9], KEYS[10], KEYS[11], KEYS[12]}, limits, now, KEYS[16])
  if refused then
    return {'RATE_LIMITED', rl, refused, retry}
  end
end
local adm = redis.call('HMGET', KEYS[7], 'token', 'exp', 'used', 'epoch')
if adm[4] == ARGV[3] then
  if adm[3] == '1' then
    return {'USED', rl}
  end
  if (tonumber(adm[2]) or 0) > now_ms then
    return {'ADMITTED', rl, adm[1], adm[2]}
  end
end
local sale = redis.call('HMGET', KEYS[8], 'remaining', 'returning')
local units = (tonumber(sale[1]) or 0) + (tonumber(sale[2]) or 0)
if not sale[1] then
  -- A sharded sale: the units its census found at the last drain (none yet: unknown).
  units = tonumber(redis.call('HGET', KEYS[1], 'units')) or 1
end
if units <= 0 then
  return {'SOLD_OUT', rl}
end
state = room_open_if_due(KEYS[1], state, now_ms, ARGV[6])
if state == 'prequeue' then
  return {'NOT_YET_ADMITTED', rl, 0, 0}
end
local seed = room[3] or redis.call('HGET', KEYS[1], 'seed')
local cohort = tonumber(room[4] or redis.call('HGET', KEYS[1], 'cohort')) or 0
local position = room_position(seed, cohort, arrival)
local served = tonumber(room[5]) or 0
if position > served then
  return {'NOT_YET_ADMITTED', rl, position, served}
end
local window = tonumber(room[6]) or 60000
if position <= room_served_at(KEYS[3], now_ms - window) then
  return {'CLAIM_EXPIRED', rl, position}
end
-- The hard limit on claims: rate per second, burst at once.
local rate, burst = tonumber(room[7]) or 1, tonumber(room[8]) or 1
local t = math.floor(1000000 / rate)
local ok, tat, _, reset, wait = gcra(tonumber(redis.call('GET', KEYS[6])), t, burst, now)
if not ok then
  return {'ROOM_THROTTLED', rl, math.ceil(wait / 1000)}
end
redis.call('SET', KEYS[6], string.format('%.0f', tat), 'PX', math.ceil(reset / 1000) + 1)
local exp = now_ms + window
redis.call('HSET', KEYS[7], 'token', ARGV[5], 'exp', exp, 'used', 0, 'epoch', ARGV[3])
redis.call('PEXPIREAT', KEYS[7], exp + 86400000)
redis.call('ZADD', KEYS[5], exp, user)
redis.call('ZADD', KEYS[4], position, user)
redis.call('HINCRBY', KEYS[1], 'claimed', 1)
return {'ADMITTED', rl, ARGV[5], exp}
