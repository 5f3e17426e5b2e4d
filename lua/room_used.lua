--[[
room_used.lua: a sharded sale's admission, used by an order on the buyer's home shard
(admit.lua marked it used there), marked used in the room too, in the product's slot: a
repeat of its claim then answers USED, and it leaves the admitted-and-unused the drain
counts. Nothing when the room's record names another admission.

KEYS
  1  adm     hash    the user's admission in the room: token, exp (ms), used, epoch
  2  active  zset    users admitted and not yet used, by expiry (ms)

ARGV
  1  user id
  2  the admission's token id

REPLY 1 marked, 0 not this admission
]]

if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'used', 1)
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
