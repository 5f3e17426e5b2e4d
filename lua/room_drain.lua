--[[
room_drain.lua: releases the next positions of the product's waiting room.

Run by one API instance at a time (a lease, as the expiry sweeper's), a few times a
second. Positions are released at the room's rate (credit accrues at `rate` per second,
at most `burst` at once), and every position that will go unclaimed gives its credit back,
so the claims keep the rate while waiters leave or do not show:
  - a released position not claimed within PRESUME_MS (3 s: a waiter at the front polls
    every second or so) is presumed a no-show; it may still claim until its claim window
    ends (the claims' own limit keeps the rate), and counts as a no-show once the window
    is over;
  - the positions released in the last PRESUME_MS are expected to go unclaimed at the
    share measured among those presumed or claimed since the claim window began (the
    last estimate is kept while fewer than 10 positions were decided);
  - the credit follows `expected` = presumed + share × the positions not yet decided:
    each pass adds its change (negative too, when waiters claim more than expected, down
    to -burst). Without the estimate the credit of a no-show came back only once it was
    presumed, 3 s later, and that of the positions it released 3 s after that: the line
    took some 10 s after the opening to reach the rate's claims.
Never released: beyond the end of the line, beyond `max_active` admitted-but-unused and
released-unclaimed tickets, or beyond the units left and on their way back — so nobody
is let in for stock that is gone. Paused: nothing is released. Every key is in the
product's slot.

KEYS
  1  room      hash    the room (lib/room.lua)
  2  releases  zset    served by time (ms)
  3  claimed   zset    users who claimed, by position
  4  active    zset    users admitted and not yet used, by expiry (ms)
  5  sale      hash    the sale: remaining, returning

ARGV
  1  seed for the opening, should it happen now
  2  a sharded sale's units left and on their way back, from its census (its product
     hash holds only the pool); absent or "" for an unsharded sale

REPLIES
  {state, served, released_now, outstanding, units, joined, noshows, claimed, epoch}
    state: the room's (prequeue, open, paused, closed; "none" without a room);
    outstanding: released-unclaimed within the window plus admitted-unused; units:
    remaining plus returning; joined, noshows, claimed: the room's counts (0 unless
    open); epoch: the room's (for lua/room_promise.lua, once the replicas hold this)
]]

local room = redis.call('HMGET', KEYS[1], 'state', 'served', 'joined', 'rate', 'burst',
  'max_active', 'claim_window_ms', 'credit', 'last_drain', 'noshows', 'claimed', 'expected',
  'epoch', 'noshow_share')
local state = room[1]
if not state then
  return {'none', 0, 0, 0, 0}
end
local now_ms = math.floor(server_time_us() / 1000)
state = room_open_if_due(KEYS[1], state, now_ms, ARGV[1])
local served = tonumber(room[2]) or 0
local sale = redis.call('HMGET', KEYS[5], 'remaining', 'returning')
local units = tonumber(ARGV[2]) or ((tonumber(sale[1]) or 0) + (tonumber(sale[2]) or 0))
-- The units as of this round, for the instances' caches: one read of the room answers
-- their polls.
redis.call('HSET', KEYS[1], 'units', units)
if state ~= 'open' then
  return {state, served, 0, 0, units, 0, 0, 0, room[13]}
end
local joined, rate, burst = tonumber(room[3]) or 0, tonumber(room[4]) or 1, tonumber(room[5]) or 1
local max_active, window = tonumber(room[6]) or 1000000, tonumber(room[7]) or 60000
local last = tonumber(room[9]) or now_ms
-- Positions released before now - window had their chance: the unclaimed among them
-- are no-shows. Those released before now - PRESUME_MS and unclaimed are presumed so.
local PRESUME_MS = math.min(3000, window)
local old = room_served_at(KEYS[2], now_ms - window)
local noshows = old - redis.call('ZCOUNT', KEYS[3], '-inf', old)
local recent = room_served_at(KEYS[2], now_ms - PRESUME_MS)
local presumed = recent - redis.call('ZCOUNT', KEYS[3], '-inf', recent)
local pending = served - old - redis.call('ZCOUNT', KEYS[3], '(' .. old, '+inf')
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now_ms)
local active = redis.call('ZCARD', KEYS[4])
local outstanding = pending + active
local decided = recent - old
local share = tonumber(room[14]) or 0
if decided >= 10 then
  share = math.min(0.9, (presumed - noshows) / decided)
end
local expected = presumed + share * (served - recent)
local credit = (tonumber(room[8]) or 0) + rate * math.max(0, now_ms - last) / 1000
credit = math.max(-burst, math.min(credit, burst) + expected - (tonumber(room[12]) or 0))
local n = math.min(math.floor(credit), joined - served, max_active - outstanding,
  units - outstanding)
if n > 0 then
  served = served + n
  credit = credit - n
  redis.call('ZADD', KEYS[2], now_ms, served)
end
-- Keep the release log short: the newest release older than the window is all a claim
-- or the no-show count needs of the past.
local keep = redis.call('ZREVRANGEBYSCORE', KEYS[2], now_ms - window, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
if keep[2] then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. keep[2])
end
redis.call('HSET', KEYS[1], 'served', served, 'credit', string.format('%.6f', credit),
  'last_drain', now_ms, 'noshows', noshows, 'expected', string.format('%.6f', expected),
  'noshow_share', string.format('%.6f', share))
return {state, served, math.max(n, 0), outstanding + math.max(n, 0), units, joined, noshows,
  tonumber(room[11]) or 0, room[13]}
