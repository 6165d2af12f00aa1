import { ATTEMPT_EXTRAS, DROP_ROUND_DATA, FAIL_ATTEMPT, FORGET_DEVICES, FORGET_OLD_FAILURE } from './common';

/** Lua: change a plan's status when the transition is allowed (see the header). */
export const SET_STATUS = `
--[[
  Allowed: active -> paused, paused -> active, active | paused -> cancelled. Anything else (the same
  status again included) changes nothing. With the status, in the same step, on the plan's current
  attempt n.a (which the caller read from meta; if it moved since, nothing changes and the caller asks
  again):
    pause:   records paused_at = now in meta;
    resume:  moves the attempt's deadlines (selection, SecAgg sharing, reporting, SecAgg unmasking) later
             by the time it was paused (now - max(paused_at, opened_at): an attempt opened during the pause
             gets its whole time), and drops paused_at;
    cancel:  fails the attempt unless it is completed or failed already (closed and finalizing included),
             discarding its data as fail-round does, so that nothing of it is released: complete-round
             completes only a 'finalizing' attempt.

  Input:
    KEYS[1]  plan meta hash
    KEYS[2]  round attempt hash of n.a
    KEYS[3]  round attempt tasks hash
    KEYS[4]  round attempt covered set
    KEYS[5]  round attempt partials set
    KEYS[6]  round attempt devices set
    KEYS[7]  round attempt broadcast
    KEYS[8]  plan list of kept broadcasts
    KEYS[9]  plan sweep set
    KEYS[10] round attempt garbage tasks hash
    KEYS[11] round attempt garbage partials set
    KEYS[12] plan history list
    KEYS[13..]  the attempt's SecAgg keys, the hash of attempt n.(a - keep) and the declared partials
             (attemptExtras(13))

    ARGV[1]  the new status: 'active', 'paused' or 'cancelled'
    ARGV[2]  round n as read from meta ('0' before round 1 opens)
    ARGV[3]  attempt a as read from meta
    ARGV[4]  now (unix ms)
    ARGV[5]  tag 'n.a'
    ARGV[6]  the attempt's partial key prefix (a worker's partial is ARGV[6] .. worker)
    ARGV[7]  failed attempts of a round to keep (RETAIN_FAILED_ATTEMPTS, >= 1)

  Output:
    {changed, status, population, shifted}
      changed 1 if the status moved, else 0; the status after the call ('' if the plan does not exist);
      the plan's population; shifted: ms the deadlines moved (resume), 1 if the attempt failed (cancel),
      else 0
    {'moved'}  the current attempt is not n.a any more (nothing changed)
    {'partials_moved'}  cancel: a worker the caller did not declare committed a partial (nothing changed)
]]
${ATTEMPT_EXTRAS}
${DROP_ROUND_DATA}
${FORGET_DEVICES}
${FORGET_OLD_FAILURE}
${FAIL_ATTEMPT}
local failKeys = {round = KEYS[2], tasks = KEYS[3], covered = KEYS[4], partials = KEYS[5], devices = KEYS[6],
  broadcast = KEYS[7], broadcasts = KEYS[8], sweep = KEYS[9], garbageTasks = KEYS[10],
  garbagePartials = KEYS[11], history = KEYS[12]}
local meta = redis.call('HMGET', KEYS[1], 'status', 'population', 'round', 'attempt', 'paused_at')
local from, to = meta[1], ARGV[1]
if not from then return {0, '', '', 0} end
local ok = (from == 'active' and (to == 'paused' or to == 'cancelled'))
  or (from == 'paused' and (to == 'active' or to == 'cancelled'))
if not ok then return {0, from, meta[2], 0} end
if (meta[3] or '0') ~= ARGV[2] or (meta[4] or '0') ~= ARGV[3] then return {'moved'} end

local now = tonumber(ARGV[4])
local phase = ARGV[2] ~= '0' and redis.call('HGET', KEYS[2], 'phase') or nil
local e = attemptExtras(13)
if to == 'cancelled' and phase and not partialsDeclared(e, KEYS[5], ARGV[6]) then return {'partials_moved'} end
local note = 0
redis.call('HSET', KEYS[1], 'status', to)
if to == 'paused' then
  redis.call('HSET', KEYS[1], 'paused_at', ARGV[4])
elseif to == 'active' then
  local opened = tonumber(redis.call('HGET', KEYS[2], 'opened_at') or '') or 0
  local shift = now - math.max(tonumber(meta[5] or '') or now, opened)
  if phase and shift > 0 then
    for _, field in ipairs({'selection_deadline', 'sharing_deadline', 'reporting_deadline', 'unmasking_deadline'}) do
      if redis.call('HEXISTS', KEYS[2], field) == 1 then redis.call('HINCRBY', KEYS[2], field, shift) end
    end
    note = shift
  end
  redis.call('HDEL', KEYS[1], 'paused_at')
elseif phase and phase ~= 'completed' and phase ~= 'failed' then
  failAttempt(failKeys, ARGV[5], 'the plan was cancelled', ARGV[4], ARGV[2], ARGV[3], ARGV[7], e)
  note = 1
end
return {1, to, meta[2], note}
`;
