--[[
room_grant.lua: a sharded sale's admission, copied to the buyer's home shard, where
admit.lua checks it. room_claim.lua decided the claim on the product's slot and answers
a repeat with the same admission, so a copy a failure lost is written again by the
claim's repeat. Writes nothing when the shard holds this admission already: its `used`
mark stays.

KEYS
  1  adm   hash    the user's admission on the home shard: token, exp (ms), used, epoch

ARGV
  1  the admission's token id
  2  its expiry (ms)
  3  the room's epoch

REPLY 1 written, 0 there already
]]

if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'exp', ARGV[2], 'used', 0, 'epoch', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], tonumber(ARGV[2]) + 86400000)
return 1
