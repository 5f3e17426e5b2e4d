--[[
room_open.lua: opens a new waiting room for a product with a sale (a new epoch), or
replaces the product's previous room: every ticket, device, release, claim and admission
count of the old epoch is gone, and tokens of the old epoch no longer match anything.

Used by `flashctl room open`. Every key is in the product's slot.

KEYS
  1  room        hash    the room (lib/room.lua)
  2  tickets     hash
  3  devices     hash
  4  releases    zset
  5  claimed     zset
  6  active      zset
  7  claim_rate  string
  8  sale        hash    the product's sale (must exist)

ARGV
  1  prequeue_from (ms; joins before it are refused)
  2  opens_at (ms; the cohort is shuffled then, later joiners queue in order)
  3  rate (claims per second)
  4  burst
  5  max_active (admitted-but-unused and released-unclaimed tickets at most)
  6  claim_window_ms
  7  message (may be empty)

REPLIES
  {"OPENED", epoch}
  {"SALE_NOT_FOUND"}   no sale for this product (open the sale first)
]]

if redis.call('EXISTS', KEYS[8]) == 0 then
  return {'SALE_NOT_FOUND'}
end
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
redis.call('HDEL', KEYS[1], 'seed', 'cohort', 'opened_at', 'units', 'promised', 'presumed')
redis.call('HSET', KEYS[1], 'state', 'prequeue', 'prequeue_from', ARGV[1], 'opens_at', ARGV[2],
  'rate', ARGV[3], 'burst', ARGV[4], 'max_active', ARGV[5], 'claim_window_ms', ARGV[6],
  'message', ARGV[7], 'joined', 0, 'served', 0, 'credit', 0, 'last_drain', ARGV[2],
  'noshows', 0, 'expected', 0, 'noshow_share', 0, 'claimed', 0, 'used', 0)
return {'OPENED', epoch}
