--[[
room.lua: what the waiting room's scripts share (room_join.lua, room_claim.lua,
room_drain.lua); prepended to each when it is loaded, after gate.lua.

The room hash (KEYS[1] of each script) holds: state (prequeue | open | paused |
closed), epoch, prequeue_from and opens_at (ms), rate (claims/s), burst, max_active,
claim_window_ms, message, joined (tickets issued: the last arrival number), and, from the
opening on, seed (24 hex digits), cohort (arrivals before the opening) and opened_at;
served (positions released so far), promised (the served count the replicas hold, set
by room_promise.lua: what polls tell), credit, last_drain, noshows, expected (the positions
released that will go unclaimed: those unclaimed after 3 s and an estimate of the newer
ones), noshow_share (the share that estimate uses), claimed, used; and units (the product's units left and on
their way back, as of the drain's last round).
]]

-- The shuffle of shared/src/room.rs, in exact double arithmetic (every value < 2^53).
local function room_round(x, key, h)
  local v = x + key
  return math.floor((v * v * 40503 + key) / 256) % (2 ^ h)
end

local function room_feistel(x, keys, h)
  local m = 2 ^ h
  local l, r = math.floor(x / m), x % m
  for i = 1, 6 do
    local nxt = (l + room_round(r, keys[i], h)) % m
    l = r
    r = nxt
  end
  return l * m + r
end

-- The position of arrival n among a cohort shuffled with seed (24 hex digits).
local function room_position(seed, cohort, n)
  if n == 0 or n > cohort or cohort <= 1 then
    return n
  end
  local keys = {}
  for i = 1, 6 do
    keys[i] = tonumber(string.sub(seed, 4 * i - 3, 4 * i), 16)
  end
  local bits, v = 0, cohort - 1
  while v > 0 do
    bits = bits + 1
    v = math.floor(v / 2)
  end
  local h = math.max(1, math.ceil(bits / 2))
  local x = n - 1
  repeat
    x = room_feistel(x, keys, h)
  until x < cohort
  return x + 1
end

-- Opens a pre-queue room once its time has come: fixes the seed and the cohort in one
-- write. Returns the room's state after.
local function room_open_if_due(room_key, state, now_ms, seed)
  if state ~= 'prequeue' then
    return state
  end
  local opens_at = tonumber(redis.call('HGET', room_key, 'opens_at')) or 0
  if now_ms < opens_at then
    return state
  end
  local joined = tonumber(redis.call('HGET', room_key, 'joined')) or 0
  redis.call('HSET', room_key, 'state', 'open', 'seed', seed, 'cohort', joined,
    'opened_at', now_ms, 'last_drain', now_ms)
  return 'open'
end

-- The served count as of `at` ms (the releases log, KEYS releases: score = time, member =
-- served then); 0 before the first release.
local function room_served_at(releases_key, at)
  local last = redis.call('ZREVRANGEBYSCORE', releases_key, at, '-inf', 'LIMIT', 0, 1)
  return tonumber(last[1]) or 0
end

