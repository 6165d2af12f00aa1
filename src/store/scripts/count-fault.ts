/** Lua: count an isolate fault of a round attempt (see the header). */
export const COUNT_FAULT = `
--[[
  Counts one isolate fault (EVAL_FAULT) of a round attempt, so that every process sees one count and the
  attempt fails once it reaches EVAL_FAULT_RETRIES (src/isolate/fault-class.ts). An attempt that exists
  counts in its hash ('faults'); one that faulted while opening (prepare, the secure-sum parameters) has no
  hash yet and counts in the plan's meta ('faults:<n.a>'). Creates neither key.

  Input:
    KEYS[1]  round attempt hash
    KEYS[2]  plan meta hash
    ARGV[1]  the attempt's tag n.a

  Output:
    the new count, or -1 if neither the attempt nor the plan exists
]]
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HINCRBY', KEYS[1], 'faults', 1) end
if redis.call('EXISTS', KEYS[2]) == 1 then return redis.call('HINCRBY', KEYS[2], 'faults:' .. ARGV[1], 1) end
return -1
`;
