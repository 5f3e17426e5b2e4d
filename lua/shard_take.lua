--[[
shard_take.lua: the first step of a refill of a sharded sale: units leave the pool and
are recorded as a transfer to one shard, in one atomic step in the product's slot.

Steps of a refill (stores/src/shards/ledger.rs): take (this script) → apply to the shard
(shard_apply.lua, in the shard's slot, once per transfer id) → close (shard_close.lua).
A transfer is never forgotten between the steps: its record stays in the ledger with the
state `open` until closed, and whoever finds it open (the refiller after a lost reply, or
the recoverer) applies it again and closes it; the shard's marker makes a second apply do
nothing. One refill at a time per shard: while a shard has an open transfer, a take for it
with another id is answered BUSY. A take repeated with the same id answers what the first
did and takes nothing more.

KEYS
  1  sale       hash  the product's sale (field pool: units not yet given to a shard)
  2  transfers  hash  <id> -> "<shard>:<units>:<open|closed>"; open:<shard> -> <id>

ARGV
  1  transfer id
  2  shard index
  3  units wanted (> 0)

REPLIES
  {"TAKEN", shard, units, state}  taken now (state open), or the same transfer again
  {"BUSY", id}                    the shard has another open transfer
  {"EMPTY"}                       the pool has no unit
]]

local id, shard, want = ARGV[1], ARGV[2], tonumber(ARGV[3])
local known = redis.call('HGET', KEYS[2], id)
if known then
  local s, units, state = string.match(known, '^(%d+):(%d+):(%a+)$')
  return {'TAKEN', tonumber(s), tonumber(units), state}
end
local busy = redis.call('HGET', KEYS[2], 'open:' .. shard)
if busy then
  return {'BUSY', busy}
end
local pool = tonumber(redis.call('HGET', KEYS[1], 'pool')) or 0
local n = math.min(want, pool)
if n <= 0 then
  return {'EMPTY'}
end
redis.call('HINCRBY', KEYS[1], 'pool', -n)
redis.call('HSET', KEYS[2], id, shard .. ':' .. n .. ':open', 'open:' .. shard, id)
return {'TAKEN', tonumber(shard), n, 'open'}
