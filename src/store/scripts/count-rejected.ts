/** Lua: count a rejected upload (see the header). */
export const COUNT_REJECTED = `
--[[
  Counts an upload rejected for its content, only in an attempt that exists (a bare HINCRBY would create
  a stray round hash for a forged or stale reference).

  Input:
    KEYS[1]  round attempt hash

  Output:
    the new 'rejected' count, or -1 if the attempt does not exist
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], 'rejected', 1)
`;
