/** Lua: the lease on an aggregation worker id (src/aggregation/lease.ts; see the headers). */

/** Takes the lease when it is free and raises the id's epoch. */
export const ACQUIRE_LEASE = `
--[[
  Takes the lease on a worker id when no live process holds it, and raises the id's fencing epoch in the
  same step, so that every holder of the lease has an epoch above every earlier holder's.

  Input:
    KEYS[1]  the worker id's lease
    KEYS[2]  the worker id's epoch counter
    ARGV[1]  the new holder's token (random)
    ARGV[2]  the lease's time to live, ms
    ARGV[3]  the epoch counter's time to live, ms (long: it must outlive any attempt the id committed to)

  Output:
    {1, epoch}  taken, with the new epoch
    {0, pttl}   held by another token, for pttl ms more unless renewed (nothing changed)
]]
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local epoch = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return {1, epoch}
end
return {0, redis.call('PTTL', KEYS[1])}
`;

/** Extends the lease while the caller's token holds it. */
export const RENEW_LEASE = `
--[[
  Extends a worker id's lease (and the life of its epoch counter) if the caller's token still holds it.

  Input:
    KEYS[1]  the worker id's lease
    KEYS[2]  the worker id's epoch counter
    ARGV[1]  the holder's token
    ARGV[2]  the lease's time to live, ms
    ARGV[3]  the epoch counter's time to live, ms

  Output:
    1 extended, 0 the token does not hold the lease (it expired, or another process took it)
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`;

/** Gives the lease up if the caller's token holds it. */
export const RELEASE_LEASE = `
--[[
  Deletes a worker id's lease if the caller's token holds it (a clean shutdown, so that a process started
  with the same id need not wait for the lease to lapse). The epoch counter stays.

  Input:
    KEYS[1]  the worker id's lease
    ARGV[1]  the holder's token

  Output:
    1 released, 0 not held by this token (nothing changed)
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;
