/** Lua: assign a task in a plan's current round (see the header). */
export const TRY_ASSIGN = `
--[[
  Assigns a task in the plan's current round attempt if the plan is active and the attempt is selecting
  with room; the assignment that reaches selection_target moves the attempt to 'reporting'.
  The current attempt is read from meta, so its keys are built here from a prefix (same hash tag, same slot).

  Input:
    KEYS[1]  plan meta hash

    ARGV[1]  round key prefix: the round hash is ARGV[1] .. 'n.a'
    ARGV[2]  tasks suffix: the tasks hash is the round hash .. ARGV[2]
    ARGV[3]  task id
    ARGV[4]  now (ms)

  Output:
    {'ok', n, a, opened_at}  assigned
    {'not_active'}           the plan is missing or not active
    {'not_selecting'}        no round is open, or it is past selecting
    {'full'}                 the attempt already has selection_target assignments
    {'task_exists'}          the task id is already in the attempt (nothing changed)
]]
local meta = redis.call('HMGET', KEYS[1], 'status', 'round', 'attempt')
if meta[1] ~= 'active' then return {'not_active'} end
if not meta[2] or meta[2] == '0' then return {'not_selecting'} end

local roundKey = ARGV[1] .. meta[2] .. '.' .. meta[3]
local r = redis.call('HMGET', roundKey, 'phase', 'assigned', 'selection_target', 'opened_at')
if r[1] ~= 'selecting' then return {'not_selecting'} end
local target = tonumber(r[3])
if tonumber(r[2]) >= target then return {'full'} end

if redis.call('HSETNX', roundKey .. ARGV[2], ARGV[3], 'a') == 0 then return {'task_exists'} end
local assigned = redis.call('HINCRBY', roundKey, 'assigned', 1)
if assigned >= target then
  redis.call('HSET', roundKey, 'phase', 'reporting', 'reporting_at', ARGV[4])
end
return {'ok', meta[2], meta[3], r[4]}
`;
