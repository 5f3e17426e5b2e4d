--[[
room_promise.lua: what the waiters may be told has been released.

The drain's writes are not promised until the required replicas hold them: its caller
WAITs after lua/room_drain.lua and, only once the replicas acknowledged, runs this with
the served count that drain left. Polls tell positions and turns from `promised`, never
from `served`: a master that dies before its replica got a release (or the opening's
seed) hands the promoted replica an older `served` (or no seed), and a waiter told
"admitted" from it would be refused its claim, or told another position. `promised` only
grows within an epoch, and lua/room_open.lua removes it with the old epoch. Every key is
in the product's slot.

KEYS
  1  room  hash  the room (lib/room.lua)

ARGV
  1  the epoch the drain ran in
  2  the served count its replicas hold

REPLIES
  1 when `promised` moved up, 0 otherwise (another epoch, not opened, or not higher)
]]

local room = redis.call('HMGET', KEYS[1], 'epoch', 'seed', 'promised')
if room[1] ~= ARGV[1] or not room[2] then
  return 0
end
local served = tonumber(ARGV[2])
if room[3] and tonumber(room[3]) >= served then
  return 0
end
redis.call('HSET', KEYS[1], 'promised', served)
return 1
