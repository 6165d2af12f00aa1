/** Lua: change a plan's status when the transition is allowed (see the header). */
export const SET_STATUS = `
--[[
  Allowed: active -> paused, paused -> active, active | paused -> cancelled. Anything else (the same
  status again included) changes nothing.

  Input:
    KEYS[1]  plan meta hash
    ARGV[1]  the new status: 'active', 'paused' or 'cancelled'

  Output:
    {changed, status, population}  changed 1 if the status moved, else 0; the status after the call
                                   ('' if the plan does not exist); the plan's population
]]
local meta = redis.call('HMGET', KEYS[1], 'status', 'population')
local from, to = meta[1], ARGV[1]
if not from then return {0, '', ''} end
local ok = (from == 'active' and (to == 'paused' or to == 'cancelled'))
  or (from == 'paused' and (to == 'active' or to == 'cancelled'))
if not ok then return {0, from, meta[2]} end
redis.call('HSET', KEYS[1], 'status', to)
return {1, to, meta[2]}
`;
