/** Lua: assign a task to a device in a plan's current round attempt (see the header). */
export const TRY_ASSIGN = `
--[[
  Assigns a task to a device in round attempt n.a if the plan is active, n.a is still its current attempt,
  and the attempt is selecting with room and has no task for this device yet; the assignment that reaches
  selection_target moves the attempt to 'reporting', unless the attempt runs SecAgg: then selection ends
  when selection_target clients have advertised their keys (advertise.ts) or at the selection timeout. The
  caller read n.a from meta and the attempt's round key before the call (to compute the device HMAC), now or
  for an earlier check-in; this script re-checks both and answers 'moved' when n.a is no longer current or
  has no round key (it left reporting), so that the caller reads them again.

  A device that already holds a task of the attempt and has not uploaded it gets that task again ('again'),
  in any phase that takes uploads: a check-in whose answer was lost (a killed API process, a Redis
  failover, a dropped connection) must not strand the device's task for the rest of the attempt. It still
  holds one task only.

  Input:
    KEYS[1]  plan meta hash
    KEYS[2]  round attempt hash
    KEYS[3]  round attempt tasks hash
    KEYS[4]  round attempt devices hash (HMAC(round key, device id) -> the task the device holds)

    ARGV[1]  round n
    ARGV[2]  attempt a
    ARGV[3]  task id
    ARGV[4]  now (ms)
    ARGV[5]  the device's HMAC under the attempt's round key

  Output:
    {'ok', opened_at, reporting_deadline}  assigned; reporting_deadline '' when the attempt stores none
    {'again', task, opened_at, reporting_deadline}  the device's own task, not uploaded yet, once more
    {'not_active'}       the plan is missing or not active
    {'moved'}            n.a is not the plan's current attempt, or it has no round key (nothing changed)
    {'not_selecting'}    n.a is past selecting and the device holds no task of it
    {'full'}             the attempt already has selection_target assignments
    {'device_assigned'}  the device already uploaded for this attempt (nothing changed)
    {'task_exists'}      the task id is already in the attempt (nothing changed)
]]
local meta = redis.call('HMGET', KEYS[1], 'status', 'round', 'attempt')
if meta[1] ~= 'active' then return {'not_active'} end
if meta[2] ~= ARGV[1] or meta[3] ~= ARGV[2] then return {'moved'} end

local r = redis.call('HMGET', KEYS[2], 'phase', 'assigned', 'selection_target', 'opened_at', 'round_key',
  'reporting_deadline', 'secagg')
local phase = r[1]
if not r[5] then return {'moved'} end
if phase ~= 'selecting' and phase ~= 'sharing' and phase ~= 'reporting' then return {'not_selecting'} end
local held = redis.call('HGET', KEYS[4], ARGV[5])
if held then
  if redis.call('HGET', KEYS[3], held) == 'a' then return {'again', held, r[4], r[6] or ''} end
  return {'device_assigned'}
end
if phase ~= 'selecting' then return {'not_selecting'} end
local target = tonumber(r[3])
if tonumber(r[2]) >= target then return {'full'} end

if redis.call('HSETNX', KEYS[3], ARGV[3], 'a') == 0 then return {'task_exists'} end
redis.call('HSET', KEYS[4], ARGV[5], ARGV[3])
local assigned = redis.call('HINCRBY', KEYS[2], 'assigned', 1)
if assigned >= target and not r[7] then
  redis.call('HSET', KEYS[2], 'phase', 'reporting', 'reporting_at', ARGV[4])
end
return {'ok', r[4], r[6] or ''}
`;
