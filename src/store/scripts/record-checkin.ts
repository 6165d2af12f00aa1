import { CHUNKED } from './common';

/** Lua: read a population's plans and count a check-in in its per-second buckets (see the header). */
export const RECORD_CHECKIN = `
--[[
  One check-in's read of its population: the ids of the plans published to it and, when there is at least
  one, the check-in counted in the bucket of the current unix second, buckets older than the window pruned,
  and what the caller needs to compute the rate. A population without plans keeps no rate: a client must not
  create Redis keys by naming populations. The hash expires after two windows without check-ins so that a
  population that goes quiet leaves nothing behind. Both keys carry the population's hash tag.

  Input:
    KEYS[1]  population rate hash (field = unix second, value = check-ins)
    KEYS[2]  population set (ids of the plans published to it)

    ARGV[1]  now (unix second)
    ARGV[2]  window (seconds)

  Output:
    {count, oldest, id...}  check-ins inside the window (this one included; 0 when the population has no
                            plan and nothing was counted); the oldest second still counted; the plan ids
]]
${CHUNKED}
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local plans = redis.call('SMEMBERS', KEYS[2])
if #plans == 0 then return {0, now} end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)

local buckets = redis.call('HGETALL', KEYS[1])
local count, oldest, stale = 0, now, {}
for i = 1, #buckets, 2 do
  local second = tonumber(buckets[i])
  if not second or second <= now - window then
    stale[#stale + 1] = buckets[i]
  else
    count = count + tonumber(buckets[i + 1])
    if second < oldest then oldest = second end
  end
end
hdelAll(KEYS[1], stale)
redis.call('EXPIRE', KEYS[1], window * 2)
local out = {count, oldest}
for i = 1, #plans do out[#out + 1] = plans[i] end
return out
`;
