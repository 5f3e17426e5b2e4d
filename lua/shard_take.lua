--[[
shard_take.lua: the first step of a transfer of a sharded sale's units, from the pool to
a shard (a refill) or from a shard back to the pool (a sweep): the units leave the source
and are recorded as a transfer in the source's ledger, in one atomic step in the
source's slot.

Steps (stores/src/shards/ledger.rs): take (this script) → apply at the destination
(shard_apply.lua, in its slot, once per transfer id) → close (shard_close.lua). A transfer
is never forgotten between the steps: its record stays in the ledger with the state `open`
until closed, and whoever finds it open (the mover after a lost reply, or the recoverer)
applies it again and closes it; the destination's marker makes a second apply do nothing.
One transfer at a time per destination and ledger: while one is open, a take for the same
destination with another id is answered BUSY. A take repeated with the same id, while
its record stands, answers what the first did and takes nothing more (a record a failover
undid is no record: the repeat is a take of its own, and the recoverer applies what it
answers); it writes the record again, unchanged, so a
`WAIT` after it returns only once the replicas hold the first take too (the recoverer
repeats the take before it applies a transfer it found open: it never applies a take a
failover could still undo).

KEYS
  1  source     hash  the pool's sale hash (field pool) or a shard's (field remaining)
  2  transfers  hash  <id> -> "<destination>:<units>:<open|closed>";
                      open:<destination> -> <id>

ARGV
  1  transfer id
  2  destination (a shard's index, or "pool")
  3  units wanted (> 0)
  4  the source's field (pool, remaining)

REPLIES
  {"TAKEN", destination, units, state}  taken now (state open), or the same transfer again
  {"BUSY", id}                          the destination has another open transfer here
  {"EMPTY"}                             the source has no unit
]]

local id, dest, want, field = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local known = redis.call('HGET', KEYS[2], id)
if known then
  local d, units, state = string.match(known, '^([^:]+):(%d+):(%a+)$')
  redis.call('HSET', KEYS[2], id, known)
  return {'TAKEN', d, tonumber(units), state}
end
local busy = redis.call('HGET', KEYS[2], 'open:' .. dest)
if busy then
  return {'BUSY', busy}
end
local n = math.min(want, tonumber(redis.call('HGET', KEYS[1], field)) or 0)
if n <= 0 then
  return {'EMPTY'}
end
redis.call('HINCRBY', KEYS[1], field, -n)
redis.call('HSET', KEYS[2], id, dest .. ':' .. n .. ':open', 'open:' .. dest, id)
return {'TAKEN', dest, n, 'open'}
