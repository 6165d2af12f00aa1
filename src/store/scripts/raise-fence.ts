/** Lua: raise a worker id's fence in a round attempt before its partial is read (see the header). */
export const RAISE_FENCE = `
--[[
  A worker process about to read its id's committed partial of an attempt (to fold into it) raises the
  attempt's fence for that id to its lease epoch first (docs/server.md, "Worker leases"). commit-partial
  refuses commits below the fence, so from here on no older holder of the id (a zombie that has not noticed
  it lost the lease) can commit to this attempt: the partial this process reads next is the last one any
  process but itself commits, and its own commit, replacing it whole, loses nothing.

  Input:
    KEYS[1]  round attempt hash
    ARGV[1]  worker id
    ARGV[2]  the reading process's lease epoch of the id (>= 1)

  Output:
    0      raised, or was as high already (or the attempt does not exist: nothing to fence)
    fence  the fence is higher than ARGV[2]: the reader itself is the stale holder (nothing changed)
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local field = 'epoch:' .. ARGV[1]
local epoch = tonumber(ARGV[2])
local fence = tonumber(redis.call('HGET', KEYS[1], field)) or 0
if fence > epoch then return fence end
if fence < epoch then redis.call('HSET', KEYS[1], field, epoch) end
return 0
`;
