/**
 * Lua: an active or paused plan -> completed before its last round, with a reason (see the header). The same
 * step as FAIL_PLAN, to another status.
 */
export const STOP_PLAN = `
--[[
  Stops a plan whose next round would spend more privacy than its target: active | paused -> completed,
  with the reason in 'reason'. Any other status changes nothing.

  Input:
    KEYS[1]  plan meta hash
    ARGV[1]  reason

  Output:
    {changed, population}  as FAIL_PLAN's
]]
local meta = redis.call('HMGET', KEYS[1], 'status', 'population')
if not meta[1] then return {0, ''} end
if meta[1] ~= 'active' and meta[1] ~= 'paused' then return {0, meta[2]} end
redis.call('HSET', KEYS[1], 'status', 'completed', 'reason', ARGV[1])
return {1, meta[2]}
`;

/** Lua: an active or paused plan -> failed with a reason (see the header). */
export const FAIL_PLAN = `
--[[
  Marks a plan that keeps failing as failed (the engine calls it when a round used up MAX_ROUND_ATTEMPTS):
  active | paused -> failed, with the reason in 'error'. Any other status changes nothing.

  Input:
    KEYS[1]  plan meta hash
    ARGV[1]  error (why the plan failed)

  Output:
    {changed, population}  changed 1 if the plan moved to 'failed', else 0; the plan's population ('' if
                           the plan does not exist)
]]
local meta = redis.call('HMGET', KEYS[1], 'status', 'population')
if not meta[1] then return {0, ''} end
if meta[1] ~= 'active' and meta[1] ~= 'paused' then return {0, meta[2]} end
redis.call('HSET', KEYS[1], 'status', 'failed', 'error', ARGV[1])
return {1, meta[2]}
`;
