import { CHUNKED } from './common';

/** Lua: count a check-in in its population's per-second buckets (see the header). */
export const RECORD_CHECKIN = `
--[[
  Counts a check-in in the bucket of the current unix second, prunes buckets older than the window, and
  returns what the caller needs to compute the rate. The hash expires after two windows without check-ins
  so that a population that goes quiet leaves nothing behind.

  Input:
    KEYS[1]  population rate hash (field = unix second, value = check-ins)

    ARGV[1]  now (unix second)
    ARGV[2]  window (seconds)

  Output:
    {count, oldest}  check-ins inside the window (this one included); the oldest second still counted
]]
${CHUNKED}
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
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
return {count, oldest}
`;
