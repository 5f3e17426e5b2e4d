--[[
room_join.lua: a place in the product's waiting room for one user, once.

Idempotent per (room epoch, user): a second join returns the same arrival number. One
ticket per device: a second user on a device that holds one is refused. The blocklists
and rate limits are the orders' own (lib/gate.lua, the same buckets), so a blocked user
or device cannot join. Before the opening (opens_at) every joiner is in the cohort, equal
to the others: the opening fixes the seed of their shuffle (lib/room.lua); whoever of
join, claim and the drain runs first after opens_at does it. Every key is in the
product's slot.

KEYS
  1  room      hash    the room (lib/room.lua)
  2  tickets   hash    user -> "arrival:device"
  3  devices   hash    device id -> user
  4  sale      hash    the sale (admit.lua): its limit fields
  5-8  rl:ip, rl:fp, rl:user, rl:global   GCRA TATs (as admit.lua's)
  9-11 blk:ip, blk:fp, blk:user           blocks (as admit.lua's)
 12  viol      hash    violation counters of the hour

ARGV
  1  user id
  2  device id (the fingerprint's id; required)
  3  seed for the opening, should it happen now (24 hex digits)
  4  "1" to enforce rate limits

REPLIES: {code, rl, ...}, rl as admit.lua's
  {"TICKET", rl, arrival, epoch, state}       the user's ticket (new or the same again);
                                              state prequeue | open | paused
  {"ROOM_NOT_FOUND", {}}                      no room for this product
  {"ROOM_CLOSED", {}}                         the room is closed
  {"ROOM_NOT_OPEN", {}, prequeue_from}        before the pre-queue opens (ms)
  {"BLOCKED", {}, scope}                      a block matched (violation)
  {"RATE_LIMITED", rl, scope, retry_after_ms} a limit refused (violation)
  {"DEVICE_HAS_TICKET", rl}                   another user holds this device's ticket
]]

local user, device = ARGV[1], ARGV[2]
local room = redis.call('HMGET', KEYS[1], 'state', 'epoch', 'prequeue_from')
local state, epoch = room[1], room[2]
if not state then
  return {'ROOM_NOT_FOUND', {}}
end
if state == 'closed' then
  return {'ROOM_CLOSED', {}}
end
local now = server_time_us()
local now_ms = math.floor(now / 1000)
if now_ms < (tonumber(room[3]) or 0) then
  return {'ROOM_NOT_OPEN', {}, room[3]}
end
local scope = blocked({KEYS[9], KEYS[10], KEYS[11]}, KEYS[12])
if scope then
  return {'BLOCKED', {}, scope}
end
local rl = {}
if ARGV[4] == '1' then
  local limits = redis.call('HMGET', KEYS[4], unpack(LIMIT_FIELDS))
  local refused, retry
  refused, retry, rl = limited({KEYS[5], KEYS[6], KEYS[7], KEYS[8]}, limits, now, KEYS[12])
  if refused then
    return {'RATE_LIMITED', rl, refused, retry}
  end
end
state = room_open_if_due(KEYS[1], state, now_ms, ARGV[3])

local held = redis.call('HGET', KEYS[2], user)
if held then
  local arrival = string.match(held, '^(%d+):')
  return {'TICKET', rl, tonumber(arrival), epoch, state}
end
local holder = redis.call('HGET', KEYS[3], device)
if holder and holder ~= user then
  return {'DEVICE_HAS_TICKET', rl}
end
local arrival = redis.call('HINCRBY', KEYS[1], 'joined', 1)
redis.call('HSET', KEYS[2], user, arrival .. ':' .. device)
redis.call('HSET', KEYS[3], device, user)
return {'TICKET', rl, arrival, epoch, state}
