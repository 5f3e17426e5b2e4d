--[[
gate.lua: the blocklists and the rate limits, as every script that lets a client in
applies them (admit.lua, room_join.lua, room_claim.lua). It is not a script of its own:
the API prepends it to each of those when it loads them (`stores::script::Script::gated`),
so they share one implementation, one set of counters and the same violations.

Sale fields read (see admit.lua): per scope <s>_t (GCRA emission interval, µs; 0 or
absent = no limit) and <s>_b (burst), for s in ip, fp, user, global.
]]

local SCOPES = {'ip', 'fingerprint', 'user', 'global'}
local VIOLATION_TTL = 90000

-- Counts one violation of `kind` in the hour's counters (kept 25 h).
local function violation(viol_key, kind)
  redis.call('HINCRBY', viol_key, kind, 1)
  redis.call('EXPIRE', viol_key, VIOLATION_TTL)
end

-- gcra:begin
-- One GCRA step in integer microseconds (the same arithmetic as shared/src/limits.rs):
-- t = emission interval, b = burst, tat = stored theoretical arrival time or nil.
-- Returns allowed, tat to store, remaining, reset (µs until a full burst), retry (µs).
local function gcra(tat, t, b, now)
  if not tat or tat < now then tat = now end
  local new_tat = tat + t
  local allow_at = new_tat - b * t
  if now < allow_at then
    return false, tat, 0, tat - now, allow_at - now
  end
  return true, new_tat, math.floor((now - allow_at) / t), new_tat - now, 0
end
-- gcra:end

-- The scope of the first block among `block_keys` (ip, fingerprint, user) that exists,
-- counted as a violation; nil when none does.
local function blocked(block_keys, viol_key)
  for i = 1, 3 do
    if redis.call('EXISTS', block_keys[i]) == 1 then
      violation(viol_key, 'blocked_' .. SCOPES[i])
      return SCOPES[i]
    end
  end
  return nil
end

-- Evaluates every configured limit (fields `limit_fields`: t, b for ip, fp, user,
-- global in that order) on the TATs of `rate_keys`, then either refuses, consuming none
-- and counting the violation, or consumes all.
-- Returns refused_scope (nil when allowed), retry_after_ms, rl: the limit closest to
-- exhaustion {scope, limit, remaining, reset_ms, window_s}, or {'off'} when the sale has
-- none.
local function limited(rate_keys, limit_fields, now_us, viol_key)
  local tats = redis.call('MGET', rate_keys[1], rate_keys[2], rate_keys[3], rate_keys[4])
  local steps = {}
  local refused, retry = nil, 0
  for i = 1, 4 do
    local t, b = tonumber(limit_fields[2 * i - 1]), tonumber(limit_fields[2 * i])
    if t and b and t > 0 and b > 0 then
      local ok, tat, left, reset, wait = gcra(tonumber(tats[i]), t, b, now_us)
      steps[i] = {ok = ok, tat = tat, left = left, reset = reset, b = b,
                  window = math.ceil(t * b / 1000000)}
      if not ok then
        refused = refused or i
        if wait > retry then retry = wait end
      end
    end
  end
  local function info(i)
    local s = steps[i]
    return {SCOPES[i], s.b, s.left, math.ceil(s.reset / 1000), s.window}
  end
  if refused then
    violation(viol_key, 'rate_' .. SCOPES[refused])
    return SCOPES[refused], math.ceil(retry / 1000), info(refused)
  end
  local closest
  for i = 1, 4 do
    local s = steps[i]
    if s then
      redis.call('SET', rate_keys[i], string.format('%.0f', s.tat), 'PX', math.ceil(s.reset / 1000) + 1)
      if not closest or s.left < steps[closest].left then
        closest = i
      end
    end
  end
  if closest then
    return nil, 0, info(closest)
  end
  return nil, 0, {'off'}
end

-- The limit fields of the sale hash, in the order `limited` takes them.
local LIMIT_FIELDS = {'ip_t', 'ip_b', 'fp_t', 'fp_b', 'user_t', 'user_b', 'global_t', 'global_b'}

-- Redis server time in µs.
local function server_time_us()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000000 + tonumber(time[2])
end

